// Perturbation methods: explanations from the model's outputs on modified
// inputs, no gradients. Shared helpers: batched no-grad prediction, the seeded
// score of a batch, and score_perturbations, the one loop (perturbed inputs
// built batch by batch, run through the model, scored) that occlusion, LIME,
// KernelSHAP, Score-CAM and the metrics' perturbation curves all use. Also here: occlusion
// (Zeiler & Fergus 2014, Captum's Occlusion: a window of every channel set to a
// baseline, the score drop averaged over the windows that cover each pixel) and
// a seeded uniform random map, the baseline every evaluation metric is compared with.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "../core/tensor.h"
#include "../layers/layer.h"

namespace gb::explain {

// Logits of `x` [N, C, H, W] in eval mode without recording a graph, `batch` inputs per forward.
Tensor predict(layers::Layer& model, const Tensor& x, int64_t batch = 256);

// Per row n: sum_k seed[n, k] * logits[r, k] for rows r = n + N * j (a batch of
// `logits.dim(0) / N` perturbed copies, copy-major); seed is [N, K].
std::vector<double> seeded_scores(const Tensor& logits, const std::vector<float>& seed, int64_t N);
// sum_k seed[k] * logits[k], accumulated in double: the seeded score of one row of logits.
double seeded_score(const float* seed, const float* logits, int64_t classes);

// `count` perturbed inputs of one shape, scored by the model. Perturbation i is written by
// fill(i, input) into a buffer of C*H*W floats (it must write every value: the buffer is
// reused); `batch` of them at a time, in the order of i, go through the model (predict: eval
// mode, no graph) on `device`, and score(i, logits, classes) turns row i of the logits into its
// score. The batches depend only on `count` and `batch`, so the same plan gives the same
// forward passes and bit-identical scores. progress(done, count), when set, runs after each batch.
struct Perturbations {
    Shape input;            // [C, H, W] of one perturbed input
    Device device = Device::cpu();
    int64_t count = 0;
    std::function<void(int64_t i, float* input)> fill;
    std::function<double(int64_t i, const float* logits, int64_t classes)> score;
    int64_t batch = 256;    // perturbed inputs per forward pass
    std::function<void(int64_t done, int64_t total)> progress;
};
// One score per perturbation, [count].
std::vector<double> score_perturbations(layers::Layer& model, const Perturbations& perturbations);

struct OcclusionOptions {
    int64_t window = 4;    // side of the square window (pixels)
    int64_t stride = 4;    // step between windows; positions 0, stride, ... while the window fits (Captum)
    float baseline = 0.f;  // value written into the window (in the model's input space)
    int64_t batch = 256;   // occluded inputs per forward pass
};
// [N, 1, H, W]: attribution(p) = mean over windows w covering p of (score(x) - score(x with w
// set to the baseline)), score = sum_k seed[n, k] * logit_k; 0 where no window covers p.
Tensor occlusion(layers::Layer& model, const Tensor& x, const Tensor& seed, const OcclusionOptions& options = {});

// [N, 1, H, W] uniform in [0, 1) from Philox stream `seed`: a map that knows nothing.
Tensor random_map(int64_t N, int64_t H, int64_t W, uint64_t seed, Device device = Device::cpu());

}  // namespace gb::explain
