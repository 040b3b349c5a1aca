// Perturbation methods: explanations from the model's outputs on modified
// inputs, no gradients. Shared helpers: batched no-grad prediction, the seeded
// score of a batch, and score_perturbations, the one loop (perturbed inputs
// composed on the backend batch by batch, run through the model, scored) that occlusion, LIME,
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

// `count` perturbed inputs, each described by the image it starts from, a mask plane and a
// replacement, and composed on the device of `images` (kernels::backend_for) batch by batch:
//   input_i = x * keep_i + r * (1 - keep_i)
// x = images[image(i)] ([C, H, W]); keep_i an [H, W] plane broadcast over the channels (1: the
// pixel stays, 0: it takes the replacement, between: a blend); r = replacement[image(i)] when
// `replacement` is defined, else the constant `value` (value 0: input_i = x * keep_i exactly,
// Score-CAM's masked input). With keep in {0, 1} every pixel is exactly x or r. keep_i is
// written by keep(i, plane) on the host (masks are bookkeeping of windows, superpixels or ranked
// units) or is row i of `keep_planes` [count, H, W] on the images' device. `batch` inputs at a
// time, in the order of i, go through the model (predict: eval mode, no graph), and score(i,
// logits, classes) turns row i of the logits into its score. The batches depend only on `count`
// and `batch`, so the same plan gives the same forward passes and bit-identical scores.
// progress(done, count), when set, runs after each batch.
struct Perturbations {
    Tensor images;                                   // [N, C, H, W] on the device the model runs on
    std::function<int64_t(int64_t i)> image;         // the image perturbation i starts from; unset: 0
    std::function<void(int64_t i, float* keep)> keep;  // writes keep_i, H * W floats (every one)
    Tensor keep_planes;                              // or [count, H, W] on the images' device
    Tensor replacement;                              // [N, C, H, W] on the images' device, or undefined
    float value = 0.f;                               // the replacement when `replacement` is undefined
    int64_t count = 0;
    std::function<double(int64_t i, const float* logits, int64_t classes)> score;
    int64_t batch = 256;    // perturbed inputs per forward pass
    std::function<void(int64_t done, int64_t total)> progress;
};
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
