// The perturbation family (explain/perturbation.h, lime.h) and the random baseline map.
// A switched-off region's default value is the input's lower bound (a black pixel), from PresetOptions.
#include "explain/lime.h"
#include "explain/methods.h"
#include "explain/perturbation.h"

using namespace gb::explain;

namespace {

const char* const kBaselineDefault = "LOW";
const char* const kBaselineHelp = "value of a switched-off pixel (default LOW: the input's lower bound, black)";

float baseline(const MethodCall& c) { return c.number_if_given("baseline").value_or(c.preset.low.value_or(0.f)); }

std::vector<MethodParam> surrogate_params() {
    const SurrogateOptions d;
    return {MethodParam::integer("samples", d.samples, 1, 1000000, "perturbed inputs per image"),
            MethodParam::integer("segments", d.slic.segments, 1, 1 << 20, "SLIC superpixels (about)"),
            MethodParam::number("compactness", d.slic.compactness, 0, 1e6, "SLIC compactness"),
            MethodParam::seed(d.seed, "coalition seed"),
            MethodParam::number_from_input("baseline", kBaselineDefault, -1e6, 1e6, kBaselineHelp)};
}

SurrogateOptions surrogate_options(const MethodCall& c) {
    SurrogateOptions o;
    o.samples = c.integer("samples");
    o.slic.segments = c.integer("segments");
    o.slic.compactness = c.number("compactness");
    o.seed = c.seed_value();
    o.baseline = baseline(c);
    return o;
}

}  // namespace

GB_EXPLAIN_METHODS(perturbation) {
    const OcclusionOptions occ;
    registry.add({.name = "occlusion",
                  .aliases = {},
                  .kind = MethodKind::Perturbation,
                  .arg = {},
                  .params = {MethodParam::integer("window", occ.window, 1, 4096, "side of the square window (pixels)"),
                             MethodParam::integer("stride", occ.stride, 1, 4096, "step between windows"),
                             MethodParam::number_from_input("baseline", kBaselineDefault, -1e6, 1e6, kBaselineHelp)},
                  .description = "score drop when a window is set to the baseline, averaged per pixel (Zeiler and Fergus 2014)",
                  .is_signed = true,
                  .fn = [](const MethodCall& c) -> Attribution {
                      OcclusionOptions o;
                      o.window = c.integer("window");
                      o.stride = c.integer("stride");
                      o.baseline = baseline(c);
                      return {occlusion(c.trace.model(), c.trace.input(), c.seed(), o), true};
                  }});
    registry.add({.name = "lime",
                  .aliases = {},
                  .kind = MethodKind::Perturbation,
                  .arg = {},
                  .params = surrogate_params(),
                  .description = "LIME on SLIC superpixels: weighted ridge regression of the score on switched-off superpixels (Ribeiro et al. 2016)",
                  .is_signed = true,
                  .fn = [](const MethodCall& c) -> Attribution {
                      return {lime(c.trace.model(), c.trace.input(), c.seed(), surrogate_options(c)).map, true};
                  }});
    registry.add({.name = "kernelshap",
                  .aliases = {},
                  .kind = MethodKind::Perturbation,
                  .arg = {},
                  .params = surrogate_params(),
                  .description = "KernelSHAP on SLIC superpixels: Shapley-kernel regression with exact efficiency (Lundberg and Lee 2017)",
                  .is_signed = true,
                  .fn = [](const MethodCall& c) -> Attribution {
                      return {kernel_shap(c.trace.model(), c.trace.input(), c.seed(), surrogate_options(c)).map, true};
                  }});
    const uint64_t no_seed = 0;
    registry.add({.name = "random",
                  .aliases = {},
                  .kind = MethodKind::Baseline,
                  .arg = {},
                  .params = {MethodParam::seed(no_seed, "map seed")},
                  .description = "uniform random map in [0, 1): the baseline of the evaluation metrics",
                  .is_signed = false,
                  .fn = [](const MethodCall& c) -> Attribution {
                      const gb::Tensor& x = c.trace.input();
                      return {random_map(x.dim(0), x.dim(2), x.dim(3), c.seed_value(), x.device()), false};
                  }});
}
