// What `glassbox prune` does, as a library call: filter scores on a reference set
// (the first N training images of each class), the pruned checkpoint (optionally
// fine-tuned with train::Trainer), and the study that puts it in context:
// test accuracy versus pruning rate for every criterion, without and with a short
// fine-tuning, parameter counts, and the measured inference speedup of the
// pruned model. Files in `out`: model.safetensors, scores.csv, curves.csv,
// accuracy_vs_rate.svg, report.html.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "../models/checkpoint.h"
#include "pruning.h"

namespace gb::explain {

struct PruneRunOptions {
    std::string checkpoint, out = "prune";
    std::string data = "fashion-mnist", data_dir;
    std::string criterion = "lrp";
    double rate = 0.5;
    int64_t finetune = 0;               // epochs of fine-tuning of the written model (0: none)
    int64_t finetune_limit = 0;         // ... on the first N training images (0: all)
    int64_t reference_per_class = 10;   // reference set: the first N training images of each class
    std::vector<double> curve_rates = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};  // empty: no curves
    int64_t curve_finetune_limit = 4096;  // the curves' fine-tuning: one epoch on the first N training images (0: none)
    int64_t test_limit = 0;             // accuracies on the first N test images (0: all)
    int64_t batch_size = 128;           // evaluation and fine-tuning batches
    float finetune_lr = 0.01f;          // SGD (momentum 0.9, Nesterov), cosine schedule
    int64_t timing_batch = 64, timing_runs = 10;
    uint64_t seed = 0;
};

struct CurvePoint {
    std::string criterion;
    double rate = 0;
    int64_t filters = 0, parameters = 0;  // what is left
    double accuracy = 0;                  // without fine-tuning
    double accuracy_finetuned = -1;       // after the curves' fine-tuning (< 0: not run)
};

struct PruneRunResult {
    std::shared_ptr<models::Vgg> model;  // the written (pruned, possibly fine-tuned) model
    std::vector<FilterScores> scores;    // of the chosen criterion, on the source model
    std::vector<std::vector<int64_t>> keep;
    double accuracy_before = 0, accuracy_pruned = 0, accuracy_finetuned = -1;
    int64_t parameters_before = 0, parameters_after = 0, filters_before = 0, filters_after = 0;
    double ms_before = 0, ms_after = 0;  // median time of one forward pass of timing_batch test images
    std::string cpu;
    std::vector<CurvePoint> curves;
};

PruneRunResult run_prune(const PruneRunOptions& options, std::ostream& log);

// The metadata a pruned checkpoint carries: the source's (its input normalisation, class names ...)
// with the model configuration replaced by the pruned one's, plus prune.criterion / prune.rate / prune.source.
std::map<std::string, std::string> pruned_metadata(const std::map<std::string, std::string>& source,
                                                   const models::Vgg& pruned, const std::string& criterion,
                                                   double rate, const std::string& source_name);

// The CPU's model name (/proc/cpuinfo), or "unknown CPU".
std::string cpu_name();

}  // namespace gb::explain
