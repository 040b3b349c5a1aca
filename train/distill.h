// Distillation of a trained network into a soft decision tree (Frosst & Hinton 2017; models/soft_tree.h),
// with a CART tree of the same depth on the same inputs as the baseline (models/cart.h): what
// `glassbox distill` and gb.distill run.
//
// In order: the teacher checkpoint and its input normalisation (raw [0, 1] pixels, with a note, when it
// records none); the train and test splits (cut to the limits), normalised as the teacher sees them and
// flattened; the teacher's logits on both splits (no gradient) -> its test predictions (the reference of
// fidelity) and, for soft targets, the training targets softmax(logits / temperature); for hard targets the
// one-hot labels. Then `epochs` of Adam on the tree's loss (models::SoftTree::loss) over shuffled batches
// (order seeded by (seed, epoch)) under a cosine learning-rate schedule, the tree scored on the test split
// after each epoch; then CART on the training rows and labels. Scores: test accuracy against the labels and
// fidelity (agreement with the teacher's prediction) of the tree's most probable leaf (the paper's
// prediction), of the path-weighted mixture of the leaves, and of CART. With out_dir: tree.safetensors,
// cart.safetensors and results.json (written atomically; the report is explain/tree_report.h's).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "../core/device.h"
#include "../io/dataset.h"
#include "../models/cart.h"
#include "../models/soft_tree.h"

namespace gb::train {

struct DistillConfig {
    std::string checkpoint;  // the teacher: a glassbox checkpoint or a plain state dict
    std::string model;       // the teacher's model name when the file does not record it
    std::string data = "fashion-mnist", data_dir;
    int64_t depth = 8;
    std::string targets = "soft";  // soft: the teacher's softmax at `temperature`; hard: the labels
    float temperature = 1.f;
    int64_t epochs = 10;
    int64_t batch_size = 128;
    float lr = 0.01f;       // Adam's, the start of the cosine schedule
    float lambda = 0.1f;    // the balance penalty's strength at the root (2^-depth below)
    float beta = 1.f;       // inverse temperature of the inner nodes
    uint64_t seed = 0;      // the tree's initialisation and the batch order
    int64_t train_limit = 0, test_limit = 0;  // first N images of each split (0: all)
    bool cart = true;       // also fit and score the CART baseline
    std::string out_dir;    // empty: write nothing
    Device device = Device::cpu();
    // After each batch: (epoch, epochs, batch, batches, running mean loss of the epoch).
    std::function<void(int64_t, int64_t, int64_t, int64_t, double)> on_batch;

    void validate() const;  // gb::Error naming the option out of range
};

struct DistillEpoch {
    int64_t epoch = 0;  // 1-based
    double lr = 0, loss = 0, data_loss = 0, penalty = 0, test_accuracy = 0, fidelity = 0, seconds = 0;
};

// Accuracy (against the labels) and fidelity (against the teacher's predictions), in 0..1.
struct Scores {
    double accuracy = 0, fidelity = 0;
};

struct DistillResult {
    std::shared_ptr<models::SoftTree> tree;
    models::CartTree cart;  // nodes() == 0 without the baseline
    std::vector<DistillEpoch> history;
    std::vector<float> mean, stddev;  // the inputs' normalisation (empty: raw pixels)
    io::Dataset test;                 // the test split used, [0, 1] pixels
    Tensor test_rows;                 // the same normalised and flattened [N, C*H*W] (host)
    std::vector<int32_t> teacher_test;  // the teacher's predictions on it
    models::SoftTreePrediction tree_test;
    std::vector<int32_t> cart_test;
    std::vector<int32_t> mixture_test;  // arg-max of the path-weighted mixture
    double teacher_accuracy = 0;
    Scores tree_scores, mixture, cart_scores;  // the most probable leaf's, the mixture's, CART's
    int64_t train_images = 0;
    double teacher_seconds = 0, tree_seconds = 0, cart_seconds = 0;
    std::map<std::string, std::string> metadata;  // what tree.safetensors records beyond the configuration
    std::string tree_path, cart_path, results_json;  // empty when not written
};

DistillResult run_distillation(const DistillConfig& config, std::ostream& log);

// results.json of a run: the configuration, the scores, the history.
std::string distill_results_json(const DistillConfig& config, const DistillResult& result);

// Images [N, C, H, W] in [0, 1] -> (x - mean[c]) / stddev[c] as rows [N, C*H*W] on the host (mean empty: as they are).
Tensor normalized_rows(const Tensor& images, const std::vector<float>& mean, const std::vector<float>& stddev);
Scores score(const std::vector<int32_t>& predicted, const Tensor& labels, const std::vector<int32_t>& teacher);

}  // namespace gb::train
