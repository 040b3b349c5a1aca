// `glassbox evaluate`: measure explanation methods on a dataset split with the
// metrics of explain/metrics (AOPC, deletion, insertion, randomisation,
// sensitivity, conservation). The work is explain::run_evaluation
// (explain/evaluation.h says how it proceeds); this file turns the options
// into its plan and writes its results.
// In order: options checked and methods parsed (each at most once: results are keyed by the spec's text); --out
// made (removed again if the command fails); checkpoint, conventions and the first --limit images loaded and
// normalised; the plan run with a progress line per batch; then the files, in this order: results.csv, results.md,
// curves.csv, <metric>_curves.svg per curve metric, randomisation.svg, report.html, and run.json last.
// results.md is also printed on stdout. Started by mpirun (-n P), the ranks share the batches (rank q runs
// batches q, q + P, ...) and rank 0 alone makes --out, shows the progress (every rank's count) and writes the
// files, which are the one-process run's (explain::run_evaluation with dist::world()).
#include <CLI/CLI.hpp>

#include <iomanip>
#include <iostream>
#include <memory>
#include <numeric>
#include <optional>
#include <sstream>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/distributed.h"
#include "explain/evaluation.h"
#include "explain/inputs.h"
#include "io/dataset.h"
#include "train/progress.h"

namespace gb::cli {

namespace {

struct EvaluateOptions {
    std::string checkpoint, model, data = "fashion-mnist", data_dir, split = "test", out = "evaluation";
    std::string canonizer = "batchnorm";
    std::vector<std::string> methods;
    int64_t limit = 100;
    explain::EvaluationOptions evaluation;  // --metric, --batch-size, --patch, --aopc-steps, --replacement, --steps ...
    ComputeOptions compute;
    explain::InputOptions input;  // --normalize
};

std::string percent(int64_t part, int64_t whole) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(1) << 100.0 * static_cast<double>(part) / static_cast<double>(whole) << "%";
    return o.str();
}

// The plan of the run: the checkpoint's model on `device`, the first --limit images normalised as it expects.
explain::EvaluationPlan make_plan(const EvaluateOptions& o, const Device& device) {
    const io::Dataset d = io::load_dataset(o.data, io::split_named(o.split), o.data_dir);
    const models::ModelOptions mo = explain::model_options_for(d);  // for a plain state dict
    models::Checkpoint ck = models::load_checkpoint(o.checkpoint, o.model, &mo);
    explain::ExplainInputs in;
    explain::read_checkpoint_conventions(ck, in, std::cerr, o.input);
    GB_CHECK(o.limit <= d.size(), "evaluate: --limit ", o.limit, " exceeds the ", d.size(), " ", o.split, " images of ",
             o.data);
    std::vector<int64_t> indices(static_cast<size_t>(o.limit));
    std::iota(indices.begin(), indices.end(), 0);
    explain::load_samples(d, o.data, o.split, indices, ck.model->config(), in);
    explain::normalize_inputs(in);
    ck.model->to(device);
    explain::EvaluationPlan plan;
    plan.model = ck.model;
    plan.inputs = in.normalized;
    plan.labels = in.labels;
    plan.methods = o.methods;
    plan.preset = explain::preset_options(in);
    plan.preset.canonizer = explain::parse_canonizer(o.canonizer);
    plan.options = o.evaluation;
    plan.data = o.data;
    plan.split = o.split;
    plan.checkpoint = o.checkpoint;
    return plan;
}

void run_evaluate(const EvaluateOptions& o) {
    GB_CHECK(!o.methods.empty(), "evaluate: give at least one --method (see glassbox explain --list)");
    GB_CHECK(!o.evaluation.metrics.empty(), "evaluate: give at least one --metric (",
             "aopc, deletion, insertion, randomisation, sensitivity, conservation)");
    explain::parse_evaluation_methods(o.methods);  // an unknown or repeated method fails before anything is loaded
    const Device device = o.compute.apply();
    const dist::Comm& ranks = dist::world();
    std::optional<OutputDir> out_dir;
    if (ranks.is_root()) out_dir.emplace(o.out);
    const explain::EvaluationPlan plan = make_plan(o, device);

    const int64_t batches = (o.limit + o.evaluation.batch - 1) / o.evaluation.batch;
    std::unique_ptr<train::Progress> progress;
    if (ranks.is_root()) {
        std::cerr << "evaluate: " << o.limit << " " << o.data << " " << o.split << " images, " << o.methods.size()
                  << " methods, metrics";
        for (const auto& m : o.evaluation.metrics) std::cerr << " " << m;
        if (ranks.size() > 1) std::cerr << ", on " << ranks.size() << " ranks";
        std::cerr << "\n";
        progress = std::make_unique<train::Progress>("evaluate", batches, std::cerr, train::Progress::is_terminal(std::cerr));
    }
    const explain::EvaluationResults results = explain::run_evaluation(
        plan,
        [&](const explain::EvaluationProgress& p) {
            if (progress) progress->update(p.batch, p.images, {{"accuracy", percent(p.correct, p.images)}});
        },
        &ranks);
    if (!ranks.is_root()) return;
    progress->finish();
    explain::write_evaluation(results, o.out);
    out_dir->done();
    std::cout << explain::results_markdown(results) << "\nwritten: " << o.out << "/results.csv, results.md, curves.csv, report.html, run.json\n";
}

}  // namespace

void add_evaluate_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("evaluate", "Measure explanation methods: AOPC, deletion/insertion AUC, randomisation, sensitivity");
    auto o = std::make_shared<EvaluateOptions>();
    add_checkpoint_option(*cmd, o->checkpoint, true);
    add_model_option(*cmd, o->model);
    add_data_options(*cmd, o->data, o->data_dir);
    add_split_option(*cmd, o->split);
    add_limit_option(*cmd, o->limit, "Evaluate the first N images of the split", 1);
    cmd->add_option("--method", o->methods, "Method spec, repeatable (glassbox explain --list), e.g. random for the baseline");
    cmd->add_option("--metric", o->evaluation.metrics, "aopc, deletion, insertion, randomisation, sensitivity, conservation (repeatable)")
        ->capture_default_str()
        ->check(CLI::IsMember(explain::evaluation_metric_names()));
    add_out_option(*cmd, o->out);
    add_batch_size_option(*cmd, o->evaluation.batch, "Images per traced batch");
    cmd->add_option("--target", o->evaluation.target, "The class explained and scored: pred (the prediction), true (the label) or a class index")
        ->capture_default_str();
    cmd->add_option("--patch", o->evaluation.patch, "AOPC: side of the square patches")->capture_default_str()->check(integer(1, 4096));
    cmd->add_option("--aopc-steps", o->evaluation.aopc_steps, "AOPC: patches removed (one per step)")->capture_default_str()->check(integer(1, 100000));
    cmd->add_option("--replacement", o->evaluation.replacements, "AOPC: noise (uniform over the pixel range), mean, blur or black; repeatable")
        ->capture_default_str()
        ->check(CLI::IsMember({"noise", "mean", "blur", "black"}));
    cmd->add_option("--steps", o->evaluation.steps, "Deletion/insertion: curve points after the start")->capture_default_str()->check(integer(1, 100000));
    cmd->add_option("--blur-sigma", o->evaluation.blur_sigma, "Gaussian sigma (pixels) of the blurred input")->capture_default_str()->check(number(0, 1000, true));
    cmd->add_option("--sensitivity-samples", o->evaluation.sensitivity_samples, "Max-sensitivity: perturbed inputs per image")
        ->capture_default_str()
        ->check(integer(1, 100000));
    cmd->add_option("--radius", o->evaluation.radius, "Max-sensitivity: L-infinity radius in input units")->capture_default_str()->check(number(0, 1e6, true));
    cmd->add_option("--canonizer", o->canonizer,
                    "LRP canonizer: batchnorm (merge each BatchNorm2d into the Conv2d/Linear before it, as a view) or none")
        ->capture_default_str()
        ->check(CLI::IsMember({"batchnorm", "none"}));
    add_seed_option(*cmd, o->evaluation.seed, "Seed of tie orders, noise and random weights");
    cmd->add_option("--normalize", o->input.normalize,
                    "MEAN/STD per channel, e.g. 0.485,0.456,0.406/0.229,0.224,0.225, or none "
                    "(default: the checkpoint's, else ImageNet's for 224x224 RGB models, else none)");
    add_compute_options(*cmd, o->compute);
    cmd->callback([o] { run_evaluate(*o); });
}

}  // namespace gb::cli
