// The `glassbox` program: one sub-command per job.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
    CLI::App app{"glassbox: train and explain small CNNs with native LRP, Grad-CAM and gradient methods"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string(GB_VERSION));
    gb::cli::add_info_command(app);
    gb::cli::add_train_command(app);
    gb::cli::add_eval_command(app);
    gb::cli::add_explain_command(app);
    gb::cli::add_evaluate_command(app);
    gb::cli::add_visualize_command(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const gb::Error& e) {
        std::cerr << "glassbox: error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
