// `glassbox prune`: explanation-guided (or weight / Taylor) filter pruning of a VGG checkpoint into a smaller
// one, with the study that puts it in context. In order: options checked; --out made (OutputDir: removed again
// if the command fails); then the library (explain/pruning_run.h): the reference set (the first N training images
// of each class), the criterion's filter scores, the pruned model (models/prune.h), optional fine-tuning
// (train::Trainer), the measured forward time of both models, the accuracy-versus-rate curves of every criterion
// without and with a short fine-tuning, and the files model.safetensors, scores.csv, curves.csv,
// accuracy_vs_rate.svg and report.html. Progress goes to stderr, the summary to stdout. Runs on the CPU.
#include <CLI/CLI.hpp>

#include <iomanip>
#include <iostream>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/parse.h"
#include "explain/pruning_run.h"

namespace gb::cli {

namespace {

struct PruneOptions {
    explain::PruneRunOptions run;
    std::string curve_rates = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9";
    ComputeOptions compute;
};

void run_prune(PruneOptions& o) {
    o.run.curve_rates.clear();
    if (o.curve_rates != "none")
        for (double r : parse_numbers(o.curve_rates, 0.0, 1.0, "prune: --curve-rates"))
            o.run.curve_rates.push_back(r);
    // Checked before --out is made, so a bad request leaves nothing behind.
    explain::parse_prune_criterion(o.run.criterion);
    GB_CHECK(o.run.rate > 0 && o.run.rate < 1, "prune: --rate must be inside (0, 1), got ", o.run.rate);
    OutputDir out_dir(o.run.out);
    const explain::PruneRunResult r = explain::run_prune(o.run, std::cerr);
    std::cout << std::fixed << std::setprecision(2) << "criterion " << o.run.criterion << ", rate " << o.run.rate
              << ": filters " << r.filters_before << " -> " << r.filters_after << ", parameters "
              << r.parameters_before << " -> " << r.parameters_after << "\n"
              << "test accuracy " << 100 * r.accuracy_before << "% -> " << 100 * r.accuracy_pruned << "%";
    if (r.accuracy_finetuned >= 0) std::cout << " (fine-tuned: " << 100 * r.accuracy_finetuned << "%)";
    std::cout << "\nforward " << r.ms_before << " ms -> " << r.ms_after << " ms (" << r.ms_before / r.ms_after
              << "x) on " << r.cpu << "\nwritten: " << o.run.out << "/model.safetensors, report.html\n";
    out_dir.done();
}

}  // namespace

void add_prune_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("prune", "Filter pruning (lrp, l1, taylor) into a smaller checkpoint, with "
                                            "accuracy-versus-rate curves and the measured speedup");
    auto o = std::make_shared<PruneOptions>();
    add_checkpoint_option(*cmd, o->run.checkpoint, /*required=*/true);
    add_out_option(*cmd, o->run.out);
    cmd->add_option("--criterion", o->run.criterion, "Filter score: lrp (Yeom et al. 2021), l1 (Li et al. 2017), "
                                                     "taylor (Molchanov et al. 2017)")
        ->capture_default_str();
    cmd->add_option("--rate", o->run.rate, "Fraction of all convolution filters to remove, inside (0, 1)")
        ->capture_default_str();
    cmd->add_option("--finetune", o->run.finetune, "Epochs of fine-tuning of the pruned model (0: none)")
        ->capture_default_str()
        ->check(integer(0, 1000));
    cmd->add_option("--finetune-limit", o->run.finetune_limit, "Fine-tune on the first N training images (0: all)")
        ->capture_default_str()
        ->check(integer(0, kMaxCount));
    cmd->add_option("--reference-per-class", o->run.reference_per_class,
                    "Reference set: the first N training images of each class")
        ->capture_default_str()
        ->check(integer(1, kMaxCount));
    cmd->add_option("--curve-rates", o->curve_rates, "Rates of the accuracy curves (comma-separated; none: no curves)")
        ->capture_default_str();
    cmd->add_option("--curve-finetune-limit", o->run.curve_finetune_limit,
                    "The curves' fine-tuning: one epoch on the first N training images (0: none)")
        ->capture_default_str()
        ->check(integer(0, kMaxCount));
    add_limit_option(*cmd, o->run.test_limit, "Accuracies on the first N test images (0: all)");
    add_batch_size_option(*cmd, o->run.batch_size)->capture_default_str()->check(integer(1, 1 << 16));
    cmd->add_option("--lr", o->run.finetune_lr, "Fine-tuning learning rate (SGD, cosine schedule)")
        ->capture_default_str()
        ->check(number(0, 10, true));
    cmd->add_option("--timing-batch", o->run.timing_batch, "Test images per timed forward pass")
        ->capture_default_str()
        ->check(integer(1, 1 << 16));
    add_seed_option(*cmd, o->run.seed, "Seed of the fine-tuning (shuffling, dropout)");
    add_data_options(*cmd, o->run.data, o->run.data_dir);
    add_compute_options(*cmd, o->compute, /*with_device=*/false);
    cmd->callback([o] {
        o->compute.apply();
        run_prune(*o);
    });
}

}  // namespace gb::cli
