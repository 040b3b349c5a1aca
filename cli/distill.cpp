// `glassbox distill`: a trained network distilled into a soft decision tree (Frosst & Hinton 2017), with a CART
// tree of the same depth as the baseline. In order: the output folder is checked; train::run_distillation loads
// the teacher checkpoint and the dataset's splits (cut to the limits), takes the teacher's predictions on the test
// split and its soft targets at --temperature on the training split (or the labels, --targets hard), trains the
// tree for --epochs with progress on stderr, scores it on the test split after each epoch, then fits and scores
// CART; explain::write_tree_report draws the report. Writes into --out: tree.safetensors (the tree, reloadable;
// `glassbox eval` scores it), cart.safetensors (the baseline; `glassbox eval` scores it too), results.json
// (configuration, scores, per-epoch history), history.svg (test accuracy and fidelity by epoch) and report.html
// (scores, the tree drawn, the paths of test images).
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/commands.h"
#include "cli/options.h"
#include "explain/tree_report.h"
#include "train/distill.h"

namespace gb::cli {

void add_distill_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("distill", "Distil a network into a soft decision tree (with a CART baseline)");
    struct Opts {
        train::DistillConfig c;
        std::string out;
        int64_t report_images = 8, report_levels = 4;
        ComputeOptions compute;
    };
    auto o = std::make_shared<Opts>();
    add_checkpoint_option(*cmd, o->c.checkpoint, /*required=*/true, "The network to distil (the teacher)");
    add_model_option(*cmd, o->c.model);
    add_data_options(*cmd, o->c.data, o->c.data_dir);
    cmd->add_option("--depth", o->c.depth, "Depth of the tree (2^depth leaves)")
        ->check(integer(1, models::SoftTreeConfig::kMaxDepth))
        ->capture_default_str();
    cmd->add_option("--targets", o->c.targets, "soft: the teacher's softmax at --temperature; hard: the labels")
        ->check(CLI::IsMember({"soft", "hard"}))
        ->capture_default_str();
    cmd->add_option("--temperature", o->c.temperature, "Temperature T of the soft targets softmax(logits / T)")
        ->check(number(0, 1e6, true))
        ->capture_default_str();
    cmd->add_option("--epochs", o->c.epochs, "Training epochs")->check(integer(1, 100000))->capture_default_str();
    add_batch_size_option(*cmd, o->c.batch_size);
    cmd->add_option("--lr", o->c.lr, "Adam's learning rate (cosine schedule)")->check(number(0, 10, true))->capture_default_str();
    cmd->add_option("--lambda", o->c.lambda, "Strength of the balance penalty at the root (halved per level)")
        ->check(number(0, 1e6))
        ->capture_default_str();
    cmd->add_option("--beta", o->c.beta, "Inverse temperature of the inner nodes' sigmoids")
        ->check(number(0, 1e6, true))
        ->capture_default_str();
    add_seed_option(*cmd, o->c.seed, "Seed of the tree's initialisation and the batch order");
    cmd->add_option("--train-limit", o->c.train_limit, "Train on the first N training images only (0: all)")
        ->check(integer(0, kMaxCount))
        ->capture_default_str();
    cmd->add_option("--test-limit", o->c.test_limit, "Score on the first N test images only (0: all)")
        ->check(integer(0, kMaxCount))
        ->capture_default_str();
    cmd->add_flag("!--no-cart", o->c.cart, "Skip the CART baseline");
    cmd->add_option("--report-images", o->report_images, "Test images whose paths the report shows")
        ->check(integer(0, 1000))
        ->capture_default_str();
    cmd->add_option("--report-levels", o->report_levels, "Levels of the tree drawn in full in the report")
        ->check(integer(1, models::SoftTreeConfig::kMaxDepth))
        ->capture_default_str();
    add_out_option(*cmd, o->out)->required();
    add_compute_options(*cmd, o->compute);
    cmd->callback([o] {
        OutputDir out(o->out);
        o->c.device = o->compute.apply();
        o->c.out_dir = o->out;
        const train::DistillResult r = train::run_distillation(o->c, std::cerr);
        explain::TreeReportOptions ro;
        ro.images = o->report_images;
        ro.levels = o->report_levels;
        const std::string report = explain::write_tree_report(o->out, o->c, r, ro);
        std::cerr << "wrote " << report << "\n";
        out.done();
    });
}

}  // namespace gb::cli
