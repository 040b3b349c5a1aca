// `glassbox train`: train a model from the registry on a dataset.
// The options fill a train::TrainConfig (its defaults are the options' defaults). In order: the thread count, the
// device, the output folder (OutputDir, made and probed before any work; without remove_on_failure it is removed
// on failure only while still empty, so the checkpoints of finished epochs survive a later failure), then
// train::Trainer::run, which logs to stderr and writes model.safetensors, metrics.csv, metrics.json and, last,
// resume.safetensors into --out at every epoch end (resume.safetensors also every --save-every batches).
// Prints the paths of the model, the resume file and the metrics on stdout. Started by mpirun (-n P), the P
// processes train one model data-parallel (train/data_parallel.h): --batch-size stays the global batch, and rank
// 0 alone makes the output folder, writes the files and prints.
#include <CLI/CLI.hpp>

#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/distributed.h"
#include "models/registry.h"
#include "train/trainer.h"

namespace gb::cli {

void add_train_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("train", "Train a VGG-style model and write checkpoints and metrics");
    auto c = std::make_shared<train::TrainConfig>();
    auto compute = std::make_shared<ComputeOptions>();
    add_model_option(*cmd, c->model, "Model to train: " + models::model_names_text());
    add_data_options(*cmd, c->data, c->data_dir);
    cmd->add_option("--epochs", c->epochs, "Number of epochs")->capture_default_str()->check(integer(1, 1000000));
    add_batch_size_option(*cmd, c->batch_size);
    cmd->add_option("--lr", c->lr, "Learning rate")->capture_default_str()->check(number(0, 1000, true));
    cmd->add_option("--optimizer", c->optimizer, "sgd, adam or adamw")
        ->capture_default_str()
        ->check(CLI::IsMember({"sgd", "adam", "adamw"}));
    cmd->add_option("--momentum", c->momentum, "SGD momentum")->capture_default_str()->check(number(0, 0.999999));
    cmd->add_flag("--nesterov,!--no-nesterov", c->nesterov, "Nesterov momentum (SGD; on by default)");
    cmd->add_option("--weight-decay", c->weight_decay, "Weight decay")->capture_default_str()->check(number(0, 1000));
    cmd->add_option("--schedule", c->schedule.kind, "Learning-rate schedule: constant, step or cosine")
        ->capture_default_str()
        ->check(CLI::IsMember({"constant", "step", "cosine"}));
    cmd->add_option("--step-size", c->schedule.step_size, "Epochs per step (step schedule)")->capture_default_str()->check(integer(1, 1000000));
    cmd->add_option("--gamma", c->schedule.gamma, "Decay factor per step (step schedule)")->capture_default_str()->check(number(0, 1000, true));
    cmd->add_option("--warmup", c->schedule.warmup_epochs, "Linear warm-up length in epochs (may be fractional)")
        ->capture_default_str()
        ->check(number(0, 1000000));
    add_seed_option(*cmd, c->seed, "Seed for initialisation, data order, augmentation and dropout");
    add_out_option(*cmd, c->out_dir, "Output folder (checkpoints, metrics)");
    cmd->add_option("--resume", c->resume, "Continue from a resume.safetensors written by an earlier run")
        ->check(CLI::ExistingFile);
    cmd->add_option("--stop-after", c->stop_after, "Stop after this many epochs of this call (resume later; 0: run all)")
        ->capture_default_str()
        ->check(integer(0, 1000000));
    cmd->add_option("--save-every", c->save_every,
                    "Also write resume state every N batches within an epoch, so a kill loses at most N steps "
                    "(0: at epoch ends only)")
        ->capture_default_str()
        ->check(integer(0, 1000000));
    // Two splits, so two limits: the --limit of the other commands, named by split.
    cmd->add_option("--train-limit", c->train_limit, "Train on the first N images only (0: all)")->capture_default_str()->check(integer(0, kMaxCount));
    cmd->add_option("--test-limit", c->test_limit, "Evaluate on the first N test images only (0: all)")->capture_default_str()->check(integer(0, kMaxCount));
    cmd->add_option("--crop-padding", c->crop_padding, "Random-crop augmentation: zero padding in pixels (0: off)")
        ->capture_default_str()
        ->check(integer(0, 1024));
    cmd->add_flag("--hflip", c->hflip, "Random horizontal flips");
    cmd->add_flag("--sync-batchnorm", c->sync_batchnorm,
                  "Under mpirun: BatchNorm normalises with the statistics of the whole global batch (every rank's "
                  "rows) instead of each rank's own");
    add_compute_options(*cmd, *compute);
    cmd->callback([c, compute] {
        c->device = compute->apply();
        // Under mpirun the ranks train together (data-parallel) and rank 0 alone writes and prints.
        const bool root = dist::world().is_root();
        std::optional<OutputDir> out;
        if (root) out.emplace(c->out_dir, /*remove_on_failure=*/false);
        const train::TrainResult r = train::Trainer(*c, std::cerr).run();
        if (!root) return;
        out->done();
        std::cout << "model: " << r.model_path << "\nresume: " << r.resume_path << "\nmetrics: " << r.metrics_csv
                  << "\n";
    });
}

}  // namespace gb::cli
