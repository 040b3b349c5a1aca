// Sub-commands of the `glassbox` program; each adds itself to the CLI11 app.
#pragma once

namespace CLI {
class App;
}

namespace gb::cli {

void add_info_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_explain_command(CLI::App& app);
void add_evaluate_command(CLI::App& app);
void add_visualize_command(CLI::App& app);
void add_counterfactual_command(CLI::App& app);
void add_distill_command(CLI::App& app);
void add_intervene_command(CLI::App& app);

}  // namespace gb::cli
