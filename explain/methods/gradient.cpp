// The gradient family (explain/gradient_methods.h; formulas in docs/explain.md).
#include "explain/gradient_methods.h"
#include "explain/methods.h"

using namespace gb::explain;

GB_EXPLAIN_METHODS(gradient) {
    // Methods of one trace and seed, without options.
    struct Plain {
        const char* name;
        std::vector<std::string> aliases;
        const char* description;
        bool is_signed;
        gb::Tensor (*compute)(const Trace&, const gb::Tensor&);
        Conserves conserves = Conserves::Nothing;
    };
    const Plain plain[] = {
        {"saliency", {}, "max over channels of |gradient| (Simonyan et al. 2014)", false, saliency},
        {"gradient", {}, "the input gradient of the target logit", true, gradient_map},
        {"gradxinput", {"gradient-x-input"}, "gradient x input (Shrikumar et al. 2016)", true, gradient_x_input},
        {"guided-backprop", {"guided-backpropagation"}, "guided backpropagation: every ReLU passes max(g, 0) where its input is positive (Springenberg et al. 2015)", true, guided_backprop},
        {"deconvnet", {}, "DeconvNet: every ReLU passes max(g, 0) (Zeiler and Fergus 2014)", true, deconvnet},
        {"deeplift", {}, "DeepLIFT (rescale), zero baseline (Shrikumar et al. 2017)", true,
         [](const Trace& t, const gb::Tensor& seed) { return deeplift(t, seed); }, Conserves::ZeroBaselineDifference},
    };
    for (const Plain& p : plain) {
        const auto compute = p.compute;
        const bool is_signed = p.is_signed;
        registry.add({.name = p.name,
                      .aliases = p.aliases,
                      .kind = MethodKind::Gradient,
                      .arg = {},
                      .params = {},
                      .description = p.description,
                      .is_signed = is_signed,
                      .conserves = p.conserves,
                      .fn = [compute, is_signed](const MethodCall& c) -> Attribution { return {compute(c.trace, c.seed()), is_signed}; }});
    }

    const SmoothGradOptions sg;
    registry.add({.name = "smoothgrad",
                  .aliases = {},
                  .kind = MethodKind::Gradient,
                  .arg = {},
                  .params = {MethodParam::integer("samples", sg.samples, 1, 100000, "noisy copies"),
                             MethodParam::number("noise", sg.noise, 0, 1e6, "noise standard deviation, a fraction of each input's range"),
                             MethodParam::seed(sg.seed, "noise seed")},
                  .description = "SmoothGrad: the gradient averaged over noisy copies of the input (Smilkov et al. 2017)",
                  .is_signed = true,
                  .fn = [](const MethodCall& c) -> Attribution {
                      SmoothGradOptions o;
                      o.samples = c.integer("samples");
                      o.noise = c.number("noise");
                      o.seed = c.seed_value();
                      return {smoothgrad(c.trace, c.targets, o), true};
                  }});

    const IntegratedGradientsOptions ig;
    registry.add({.name = "ig",
                  .aliases = {"integrated-gradients"},
                  .kind = MethodKind::Gradient,
                  .arg = {},
                  .params = {MethodParam::integer("steps", ig.steps, 1, 100000, "integration steps"),
                             MethodParam::choice("rule", integration_rule_name(ig.rule), integration_rule_names(), "Captum's step rule")},
                  .description = "Integrated Gradients, zero baseline (Sundararajan et al. 2017)",
                  .is_signed = true,
                  .conserves = Conserves::ZeroBaselineDifference,
                  .fn = [](const MethodCall& c) -> Attribution {
                      IntegratedGradientsOptions o;
                      o.steps = c.integer("steps");
                      o.rule = parse_integration_rule(c.choice("rule"));
                      return {integrated_gradients(c.trace, c.targets, o), true};
                  }});
}
