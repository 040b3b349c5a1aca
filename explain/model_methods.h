// Model-level explanations: what a model or a unit responds to, rather than why
// one input got its score.
//   - activation maximisation (Erhan et al. 2009; Simonyan et al. 2014; the
//     regularisers of Mordvintsev et al. 2015, Yosinski et al. 2015, Mahendran &
//     Vedaldi 2015 and Olah et al. 2017): gradient ascent on the input of a class
//     logit, of a channel's unit at the centre of the feature map, or of a
//     channel's mean activation,
//     x <- x + lr (g / mean|g|) - lr l2 (x - m) - lr tv dTV/dx, m the middle of [low, high],
//     the gradient taken at the input randomly shifted by up to `jitter` pixels
//     (then shifted back), a Gaussian blur every `blur_every` steps, values kept
//     within [low, high]. Several objectives run as one batch. docs/explain.md
//     gives each regulariser's source, default and the measured effect.
//   - channel importance: mean |activation| per channel (over samples and
//     positions) of the chosen layers' outputs on a dataset, sorted per layer.
//   - counterfactuals (Wachter et al. 2017): gradient descent from x on
//     -log p_target(x') + lambda ||x' - x||^2 within [low, high]; a sample stops
//     once it is classified as the target with p >= `confidence`. Optionally the
//     prototype term theta ||x' - proto||^2 of Van Looveren & Klaise 2021 pulls x'
//     towards a given example of the target class (plausibility). The softmax at
//     every iterate is recorded (the probability path).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "../core/tensor.h"
#include "../layers/layer.h"

namespace gb::explain {

// A class logit (layer empty), or `channel` of the output of `layer`: its unit at the centre of the feature map
// (row H / 2, column W / 2; Olah et al. 2017's "neuron" objective) or its mean over all positions (their
// "channel" objective). For a [B, K] output (a Linear layer) both are unit `index`.
struct Objective {
    std::string layer;
    int64_t index = 0;    // the class, or the channel
    bool centre = false;  // a channel's centre unit instead of its mean
    std::string str() const;
};

struct ActivationMaxOptions {
    int64_t steps = 200;
    float lr = 0.01f;                  // per step, relative to mean |g| when normalize_gradient
    float l2 = 0.01f;                  // L2 decay towards the middle of [low, high] (Simonyan et al. 2014)
    int64_t jitter = 1;                // random shift of up to this many pixels (Mordvintsev et al. 2015)
    int64_t blur_every = 4;            // 0: never (Yosinski et al. 2015)
    float blur_sigma = 0.5f;
    float tv = 0.f;                    // weight of the squared total variation (Mahendran & Vedaldi 2015); 0: off
    bool normalize_gradient = true;    // g / mean|g| per objective (Mordvintsev et al. 2015); false: the raw g
    float low = 0.f, high = 1.f;       // the input range (the model's input space)
    uint64_t seed = 0;                 // the start: uniform noise in the middle tenth of [low, high]
};

// Called before each step (step 0 .. steps - 1) with the objectives at that step's (shifted) input, and once
// more with step == steps and the final values.
using ActivationMaxProgress = std::function<void(int64_t step, const std::vector<double>& values)>;

struct ActivationMaxResult {
    Tensor images;                    // [B, C, H, W], one per objective
    std::vector<double> start, value;  // the objective at the start and at the end
};

// `input` is the model's input shape [C, H, W]. Runs on the device of the model's parameters; `images` live there.
ActivationMaxResult activation_maximisation(layers::Layer& model, const Shape& input, const std::vector<Objective>& objectives,
                                            const ActivationMaxOptions& options = {},
                                            const ActivationMaxProgress& progress = {});

// The gradient of the squared total variation sum_{i,j} (x[i,j+1] - x[i,j])^2 + (x[i+1,j] - x[i,j])^2 of each
// plane of x [planes, H, W] (Mahendran & Vedaldi 2015's V^beta with beta = 2), on x's backend.
Tensor total_variation_gradient(const Tensor& x, int64_t planes, int64_t H, int64_t W);

// The objectives' values [B] for a batch [B, C, H, W] (one objective per row).
std::vector<double> objective_values(layers::Layer& model, const Tensor& x, const std::vector<Objective>& objectives);

struct LayerImportance {
    std::string layer;
    std::vector<std::pair<int64_t, double>> channels;  // (channel, mean |activation|), largest first
};
// `layers` empty: every Conv2d and Linear layer. data: [N, C, H, W] in the model's input space.
std::vector<LayerImportance> channel_importance(layers::Layer& model, const Tensor& data,
                                                const std::vector<std::string>& layers = {}, int64_t batch = 256);

struct CounterfactualOptions {
    int64_t steps = 300;
    float lr = 0.05f;
    float distance_weight = 0.05f;  // lambda
    float confidence = 0.5f;
    float low = 0.f, high = 1.f;
    float prototype_weight = 0.f;  // theta of the prototype term; 0: off (then no prototypes are needed)
};

struct Counterfactual {
    Tensor input;              // [C, H, W]
    int32_t target = 0, new_class = 0;
    double target_probability = 0;  // p(target) at x'
    double distance = 0;            // ||x' - x||_2
    int64_t steps = 0;              // steps taken
    bool reached = false;           // classified as the target with p >= confidence
    // [steps + 1, classes] float32 on the host: the softmax at each iterate, row 0 at x, the last row at the
    // returned x' (its target column is target_probability, rounded to float).
    Tensor probabilities;
};

// Called after each step's bookkeeping with every sample's state so far (for progress output); `step` counts
// the gradient steps taken.
using CounterfactualProgress = std::function<void(int64_t step, const std::vector<Counterfactual>& state)>;

// Runs on x's device (the model's); each `input` lives there. `prototypes`: [N, C, H, W] on x's device, one
// example of each sample's target class, required when options.prototype_weight > 0 and unused otherwise.
std::vector<Counterfactual> counterfactuals(layers::Layer& model, const Tensor& x, const std::vector<int32_t>& targets,
                                            const CounterfactualOptions& options = {}, const Tensor& prototypes = {},
                                            const CounterfactualProgress& progress = {});

}  // namespace gb::explain
