// Perturbation methods: explanations from the model's outputs on modified
// inputs, no gradients. Shared helpers: batched no-grad prediction and the
// seeded score of a batch; occlusion (Zeiler & Fergus 2014, Captum's
// Occlusion: a window of every channel set to a baseline, the score drop
// averaged over the windows that cover each pixel); and a seeded uniform random
// map, the baseline every evaluation metric is compared with.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "layers/layer.h"

namespace gb::explain {

// Logits of `x` [N, C, H, W] in eval mode without recording a graph, `batch` inputs per forward.
Tensor predict(layers::Layer& model, const Tensor& x, int64_t batch = 256);

// Per row n: sum_k seed[n, k] * logits[r, k] for rows r = n + N * j (a batch of
// `logits.dim(0) / N` perturbed copies, copy-major); seed is [N, K].
std::vector<double> seeded_scores(const Tensor& logits, const std::vector<float>& seed, int64_t N);

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
