// Evaluation metrics for explanation maps: measured, not just drawn.
//   - perturbation curves: the input's units (pixels, or p x p patches) are
//     ranked by the map's relevance (summed over channels and the unit; ties
//     in a seeded random order) and perturbed most relevant first.
//     Deletion replaces the first m units by a replacement; insertion starts
//     from the replacement and restores them. Scores are the target's logit
//     or its softmax probability.
//   - AOPC (Samek et al. 2017): mean over samples of 1/(L+1) sum_{k=0..L} (f(x_0) - f(x_k))
//     on the most-relevant-first deletion curve (the logit; replacement uniform noise, mean or blur).
//   - deletion / insertion AUC (Petsiuk et al. 2018): the trapezoid area under the
//     probability curve over the perturbed fraction in [0, 1] (deletion: lower is
//     better; insertion from a blurred input: higher is better).
//   - model randomisation (Adebayo et al. 2018): the layers with weights are
//     re-initialised cumulatively from the output down, the maps recomputed and
//     compared with the original ones (Spearman rank correlation, of the maps
//     and of their absolute values, and SSIM of |map| / max |map|).
//     A method that depends on the model drops towards 0.
//   - max-sensitivity (Yeh et al. 2019): max over n inputs y, |y - x|_inf <= r
//     (uniform), of ||phi(y) - phi(x)||_2 / max(||phi(x)||_2, 1e-12).
//   - relevance conservation error: |sum_i R_i - expected| / |expected| per sample.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "../core/tensor.h"
#include "../layers/layer.h"

namespace gb::explain {

enum class Replacement { Value, Noise, Mean, Blur };
Replacement parse_replacement(const std::string& name);  // value, noise, mean, blur
std::string replacement_name(Replacement r);

constexpr float kMaxBlurSigma = 1000.f;

struct PerturbationOptions {
    bool insertion = false;    // false: deletion (perturb the first m units); true: insertion
    int64_t patch = 1;         // units are patch x patch squares (the last row/column may be smaller)
    int64_t steps = 16;        // curve points after the start
    int64_t units_per_step = 0;  // 0: spread all units over `steps` (ceil(units / steps) per step)
    Replacement replacement = Replacement::Value;
    float value = 0.f;                    // Value: the constant
    float noise_low = 0.f, noise_high = 1.f;  // Noise: uniform in [low, high)
    float blur_sigma = 2.f;               // Blur: Gaussian sigma (pixels, at most kMaxBlurSigma), per channel, edges clamped
    bool probability = false;  // score: softmax probability of the class (true) or its logit
    uint64_t seed = 0;         // tie order and noise
    int64_t batch = 256;       // perturbed inputs per forward pass
};

struct Curves {
    int64_t samples = 0, points = 0;
    std::vector<double> fraction;  // [points]: fraction of units perturbed at each point
    std::vector<double> values;    // [samples * points] scores
    double at(int64_t n, int64_t k) const { return values[static_cast<size_t>(n * points + k)]; }
    std::vector<double> mean() const;  // [points] mean over samples
    void append(const Curves& more);   // more samples with the same points
};

// The units of a map [N, C or 1, H, W] ranked most relevant first, for sample n (ties in seeded random order).
std::vector<int64_t> rank_units(const Tensor& maps, int64_t n, int64_t patch, uint64_t seed);

// x [N, C, H, W] (the model's input), maps [N, C or 1, H, W], classes [N]. `x_logits`, when
// given, are the model's logits for x (a trace's): the points whose input is x itself
// (nothing deleted, everything inserted) take their score from them instead of a forward pass.
Curves perturbation_curves(layers::Layer& model, const Tensor& x, const Tensor& maps,
                           const std::vector<int32_t>& classes, const PerturbationOptions& options,
                           const Tensor& x_logits = Tensor());

// The replacement image for x (the same shape).
Tensor replacement_image(const Tensor& x, const PerturbationOptions& options);

// Per sample: mean_k (c_0 - c_k), and the trapezoid area over `fraction`; aopc / area_under_curve are their means.
std::vector<double> aopc_per_sample(const Curves& c);
std::vector<double> area_per_sample(const Curves& c);
double aopc(const Curves& c);
double area_under_curve(const Curves& c);

// A method as a function of the model, so the randomisation and sensitivity
// checks can call it on other weights and inputs; returns [N, C or 1, H, W].
using Explainer = std::function<Tensor(layers::Layer& model, const Tensor& x, const std::vector<int32_t>& classes)>;

// Spearman's rank correlation (average ranks for ties; 0 when either side is constant).
double spearman(const std::vector<float>& a, const std::vector<float>& b);
// SSIM of two H x W images with values in [0, data_range] (Wang et al. 2004, as
// skimage.metrics.structural_similarity's defaults: 7 x 7 uniform window, K1 = 0.01,
// K2 = 0.03, sample covariance, mean over the window centres at least 3 pixels from the border).
double ssim(const std::vector<float>& a, const std::vector<float>& b, int64_t H, int64_t W, double data_range = 1.0);

struct RandomisationStep {
    std::string layer;   // the layer randomised last ("features.0"); the cascade includes all above it
    double spearman = 0, spearman_abs = 0, ssim = 0;  // means over samples, against the original maps
    std::vector<double> spearman_per_sample, spearman_abs_per_sample, ssim_per_sample;  // [N] each
};
// Layers with a weight of rank >= 2 (Conv2d, Linear), from the output down, each re-initialised
// as PyTorch does (U(-1/sqrt(fan_in), 1/sqrt(fan_in)), weight and bias) from `seed`. The weights are
// restored afterwards (also on error).
std::vector<RandomisationStep> randomisation_check(layers::Layer& model, const Tensor& x,
                                                   const std::vector<int32_t>& classes, const Explainer& explainer,
                                                   uint64_t seed = 0);

struct SensitivityOptions {
    int64_t samples = 10;  // perturbed inputs per sample
    float radius = 0.02f;  // L-infinity radius, in the model's input units
    uint64_t seed = 0;
};
// Per sample: max-sensitivity as above.
std::vector<double> max_sensitivity(layers::Layer& model, const Tensor& x, const std::vector<int32_t>& classes,
                                    const Explainer& explainer, const SensitivityOptions& options = {});

// Per sample: |sum of the map - expected[n]| / |expected[n]|.
std::vector<double> conservation_error(const Tensor& maps, const std::vector<double>& expected);

}  // namespace gb::explain
