// The training loop: epochs of shuffled, normalised (optionally augmented)
// batches, cross-entropy, an optimizer step per batch and a learning-rate
// schedule per iteration; after each epoch an evaluation on the test split,
// a checkpoint (model.safetensors, for eval/explain/PyTorch), the metrics so far
// (metrics.csv, metrics.json) and, last, a resume file (resume.safetensors:
// model + optimizer + RNG + progress, self-sufficient); with save_every also a
// resume file every N batches within an epoch. Every write is atomic and
// durable (io::write_file_atomic). A non-finite loss, weight or optimizer state
// stops training before anything of that moment is saved, and every error
// (also a failed write) says which files are current and from which moment.
// docs/training.md ("Durable runs") explains the write order.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "core/device.h"
#include "io/dataset.h"
#include "layers/layer.h"
#include "train/loader.h"
#include "train/metrics.h"
#include "train/schedule.h"

namespace gb::train {

struct TrainConfig {
    std::string model = "vgg-mini";
    std::string data = "fashion-mnist";
    std::string data_dir;
    int64_t epochs = 3;
    int64_t batch_size = 128;
    std::string optimizer = "sgd";  // sgd | adam | adamw
    float lr = 0.05f;
    float momentum = 0.9f;
    bool nesterov = true;
    float weight_decay = 5e-4f;
    Schedule schedule{.kind = "cosine"};  // kind, warm-up, step size ...; base_lr and total_epochs come from lr/epochs
    uint64_t seed = 0;
    std::string out_dir = "runs/vgg-mini";
    std::string resume;        // a resume.safetensors to continue from
    int64_t stop_after = 0;    // run at most this many epochs in this call, then return (0: up to `epochs`)
    int64_t train_limit = 0;   // use only the first N training images (0 = all)
    int64_t test_limit = 0;    // evaluate on the first N test images (0 = all)
    int64_t crop_padding = 0;
    bool hflip = false;
    int64_t save_every = 0;  // also write resume.safetensors every N batches within an epoch (0: at epoch ends only)
    Device device = Device::cpu();
    // Called after each optimizer step (0-based epoch and batch), before the step's
    // checks and saves: instrumentation, and tests that need a given step to go wrong.
    std::function<void(layers::Layer& model, int64_t epoch, int64_t batch)> after_step;
};

struct EpochRecord {
    int64_t epoch = 0;  // 1-based
    double lr = 0, train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0, seconds = 0, images_per_s = 0;
};

struct TrainResult {
    std::vector<EpochRecord> history;
    std::string model_path, resume_path, metrics_csv, metrics_json;
};

TrainResult run_training(const TrainConfig& config, std::ostream& log);

struct EvalResult {
    double loss = 0;
    ConfusionMatrix confusion{1};
    double seconds = 0;
};

// Eval-mode pass over `data` (batches of `batch_size`, no gradients).
EvalResult evaluate(layers::Layer& model, const io::Dataset& data, const LoaderOptions& loader, Device device,
                    std::ostream* progress = nullptr);

// metrics.csv / metrics.json contents for a history.
std::string metrics_csv(const std::vector<EpochRecord>& history);
std::string metrics_json(const std::vector<EpochRecord>& history);

}  // namespace gb::train
