// Rule: how a layer passes relevance from its output to its input (LRP,
// Montavon et al. 2019, "Layer-Wise Relevance Propagation: An Overview").
// Every rule for a linear-like layer f(x; W, b) (Conv2d, Linear, average
// pools) is one generic computation over "groups" of "terms":
//   for each group g:  Z_g = sum_k c_k f(x_k; W_k, b_k),  s_g = mask_g(R) / stabilise(Z_g)
//   R_in = sum_g coef_g sum_k c_k * [x_k *] f^T_{W_k}(s_g)
// where a term k modifies the input (x_k), the parameters (W_k, b_k) and has a
// weight c_k; f^T is the layer's input gradient. The built-in rules are such
// term lists (Zennit 0.5.1's conventions, see docs/explain.md); a Custom rule
// supplies its own, so it works on every linear-like layer unchanged.
// Rectifier rules (layers that answer Capability::Rectifier, the ReLU) change the
// backward of the activation instead, as Zennit's GuidedBackprop rule does; the
// gradient methods apply them through a composite like any LRP rule:
//   GuidedBackprop   R_in = f'(x) max(R, 0)                     (Springenberg et al. 2015)
//   Deconvnet        R_in = max(R, 0)                           (Zeiler and Fergus 2014)
//   DeepLiftRescale  R_in = R (f(x) - f(x0)) / (x - x0), with the reference x0 at this layer
//                    and f(x0) its output; f'(x) R where |x - x0| < 1e-10 (Captum's
//                    threshold)                                (Shrikumar et al. 2017)
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../core/tensor.h"

namespace gb::layers {

struct RuleTerm {
    // What `input` computes when it is x's positive or negative part (the z+,
    // alpha-beta and gamma rules): on an input without negative elements (after a
    // ReLU) the generic path then uses x itself, or skips the term, without
    // running `input`. Custom: no such knowledge.
    enum class Part { Custom, Positive, Negative };
    // Input modifier; nullptr = the input itself.
    std::function<Tensor(const Tensor& x)> input;
    Part part = Part::Custom;
    // Parameter modifier applied to the weight and (is_bias = true) the bias; nullptr = unchanged.
    std::function<Tensor(const Tensor& p, bool is_bias)> param;
    float weight = 1.f;  // c_k
    // Key under which modified parameters are cached per parameter version ("" = do not cache).
    std::string cache_tag;
};

struct RuleGroup {
    std::vector<RuleTerm> terms;
    float coef = 1.f;
    int output_sign = 0;  // +1 / -1: only outputs whose plain z has this sign pass relevance
};

struct CustomRule {
    std::vector<RuleGroup> groups;
    bool multiply_by_input = true;  // false: R_in = f^T(s) (Flat, WSquare)
    float stabilizer = 1e-6f;
    std::string name = "custom";
};

struct Rule {
    enum class Kind {
        Pass, Gradient, Epsilon, ZPlus, AlphaBeta, Gamma, Flat, WSquare, ZBox, Norm, Custom,
        GuidedBackprop, Deconvnet, DeepLiftRescale  // rectifier rules
    };
    Kind kind = Kind::Gradient;
    float epsilon = 1e-6f;  // Epsilon's epsilon; the stabiliser of every other rule
    float gamma = 0.25f;
    float alpha = 1.f, beta = 0.f;
    float low = 0.f, high = 1.f;  // ZBox bounds (scalars) ...
    Tensor low_tensor, high_tensor;  // ... or per channel [C] / per input element (same shape as the input)
    std::shared_ptr<const CustomRule> custom;
    Tensor reference_input, reference_output;  // DeepLiftRescale: x0 and f(x0) at the layer (its input's shape)

    static Rule pass();
    static Rule gradient();
    static Rule epsilon_rule(float eps = 1e-6f);
    static Rule lrp0() { return epsilon_rule(0.f); }
    static Rule zplus(float stabilizer = 1e-6f);
    // alpha - beta must be 1 (checked).
    static Rule alpha_beta(float alpha = 2.f, float beta = 1.f, float stabilizer = 1e-6f);
    static Rule gamma_rule(float gamma = 0.25f, float stabilizer = 1e-6f);
    static Rule flat(float stabilizer = 1e-6f);
    static Rule wsquare(float stabilizer = 1e-6f);
    static Rule zbox(float low, float high, float stabilizer = 1e-6f);
    static Rule zbox(Tensor low, Tensor high, float stabilizer = 1e-6f);
    static Rule norm(float stabilizer = 1e-6f);
    static Rule custom_rule(CustomRule rule);
    static Rule guided_backprop();
    static Rule deconvnet();
    static Rule deeplift_rescale(Tensor reference_input, Tensor reference_output);

    // True for the rules of rectifiers (GuidedBackprop, Deconvnet, DeepLiftRescale).
    bool for_rectifiers() const;

    // The group/term form of a linear-like rule (not for Pass / Gradient).
    CustomRule expand() const;
    std::string str() const;
};

}  // namespace gb::layers
