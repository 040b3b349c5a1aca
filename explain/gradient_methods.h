// The gradient family (Captum 0.8.0's definitions, which the tests match):
//   gradient            d f_t / d x                                   (Simonyan et al. 2014)
//   saliency            max over channels of |d f_t / d x|  -> [N, 1, H, W]
//   gradient x input    x * d f_t / d x                               (Shrikumar et al. 2016)
//   SmoothGrad          mean over n noisy copies x + N(0, (s (max x - min x))^2) of the gradient (Smilkov et al. 2017)
//   Integrated Gradients (x - x0) * sum_k w_k grad(x0 + a_k (x - x0))  (Sundararajan et al. 2017)
//   guided backprop     every ReLU's backward is max(g, 0) * [x > 0]  (Springenberg et al. 2015)
//   DeconvNet           every ReLU's backward is max(g, 0)             (Zeiler and Fergus 2014)
//   DeepLIFT (rescale)  every ReLU's derivative -> (relu(x) - relu(x0)) / (x - x0); (x - x0) * that gradient
//                       (Shrikumar et al. 2017; max-pool routes like the gradient, as Captum does here)
// The last three are rectifier rules (layers/rule.h) that the ReLU nodes apply in a gradient pass
// (Trace::modified_gradient with a composite), on any backend.
// f_t is the seeded output (one-hot target: the target logit). Methods that
// need other inputs (SmoothGrad, IG, DeepLIFT's baseline) run their own
// forward passes, batched; the others reuse the trace.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trace.h"

namespace gb::explain {

Tensor gradient_map(const Trace& trace, const Tensor& seed);
Tensor saliency(const Trace& trace, const Tensor& seed);
Tensor gradient_x_input(const Trace& trace, const Tensor& seed);
Tensor guided_backprop(const Trace& trace, const Tensor& seed);
Tensor deconvnet(const Trace& trace, const Tensor& seed);

struct SmoothGradOptions {
    int64_t samples = 25;
    float noise = 0.15f;  // standard deviation as a fraction of each sample's input range
    uint64_t seed = 0;
    int64_t batch = 64;   // noisy inputs per forward pass
};
Tensor smoothgrad(const Trace& trace, const std::vector<Target>& targets, const SmoothGradOptions& options = {});

enum class IntegrationRule { RiemannLeft, RiemannRight, RiemannMiddle, RiemannTrapezoid, GaussLegendre };
struct IntegratedGradientsOptions {
    int64_t steps = 50;
    IntegrationRule rule = IntegrationRule::GaussLegendre;
    Tensor baseline;      // [C, H, W] or the input's shape; undefined = zeros
    int64_t batch = 256;  // scaled inputs per forward pass
};
// Captum's step fractions a_k and weights w_k (weights rounded to float32 as Captum does).
void integration_steps(IntegrationRule rule, int64_t steps, std::vector<double>& alphas, std::vector<float>& weights);
Tensor integrated_gradients(const Trace& trace, const std::vector<Target>& targets,
                            const IntegratedGradientsOptions& options = {});
IntegrationRule parse_integration_rule(const std::string& name);
std::string integration_rule_name(IntegrationRule rule);
std::vector<std::string> integration_rule_names();

// Baseline as for IG (undefined = zeros).
Tensor deeplift(const Trace& trace, const Tensor& seed, const Tensor& baseline = Tensor());

}  // namespace gb::explain
