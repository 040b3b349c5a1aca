// Surrogate explanations on superpixels: LIME (Ribeiro et al. 2016) and
// KernelSHAP (Lundberg & Lee 2017). Both segment each image with SLIC, switch
// superpixels off (set every channel to `baseline`) in `samples` random
// coalitions z in {0, 1}^K, score each perturbed input (sum_k seed[n, k] * logit_k,
// batched no-grad forwards) and fit a linear model of the score in z; a pixel's
// attribution is its superpixel's coefficient, [N, 1, H, W].
//   LIME (lime_image's defaults): z_j ~ Bernoulli(1/2), the first sample all ones;
//     weight sqrt(exp(-d^2 / 0.25^2)), d = cosine distance of z to all ones;
//     weighted ridge regression (alpha = `ridge`, unpenalised intercept).
//   KernelSHAP: coalition sizes s in 1..K-1 drawn with probability proportional to
//     the Shapley kernel's total weight (K-1) / (s (K-s)), members uniform, weight 1;
//     least squares with the efficiency constraint sum_j phi_j = f(all) - f(none)
//     imposed exactly by eliminating the last coefficient (as shap's KernelExplainer).
// Deterministic for a given `seed`: sample n draws from Philox stream (seed, n).
#pragma once

#include <cstdint>
#include <vector>

#include "../core/tensor.h"
#include "slic.h"
#include "../layers/layer.h"

namespace gb::explain {

struct SurrogateOptions {
    int64_t samples = 100;     // perturbed inputs per image (KernelSHAP: plus the empty and full coalitions)
    SlicOptions slic;
    float baseline = 0.f;      // value of a switched-off superpixel (the model's input space)
    float kernel_width = 0.25f;  // LIME
    float ridge = 1.f;           // LIME: ridge alpha (sklearn's Ridge default, as lime uses)
    uint64_t seed = 0;
    int64_t batch = 256;       // perturbed inputs per forward pass
};

struct SurrogateResult {
    Tensor map;                                // [N, 1, H, W]
    std::vector<Segmentation> segments;        // per image
    std::vector<std::vector<double>> coefficients;  // per image, one per superpixel
    std::vector<double> intercept;             // LIME's intercept / KernelSHAP's f(none)
};

// `segments` may give each image's segmentation (e.g. a test's known regions); empty: SLIC.
SurrogateResult lime(layers::Layer& model, const Tensor& x, const Tensor& seed, const SurrogateOptions& options = {},
                     const std::vector<Segmentation>& segments = {});
SurrogateResult kernel_shap(layers::Layer& model, const Tensor& x, const Tensor& seed,
                            const SurrogateOptions& options = {}, const std::vector<Segmentation>& segments = {});

// Solves (A^T diag(w) A + ridge I) b = A^T diag(w) y for b (A: rows x cols, row-major) by
// Cholesky in double; gb::Error when the system is singular.
std::vector<double> weighted_ridge(const std::vector<double>& A, const std::vector<double>& y,
                                   const std::vector<double>& w, int64_t cols, double ridge);

}  // namespace gb::explain
