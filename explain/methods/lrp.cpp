// Layer-wise relevance propagation by composite (explain/composite.h; formulas in docs/explain.md).
#include "explain/methods.h"

using namespace gb::explain;

GB_EXPLAIN_METHODS(lrp) {
    const PresetOptions d;
    registry.add({.name = "lrp",
                  .aliases = {},
                  .kind = MethodKind::Relevance,
                  .arg = {.name = "COMPOSITE", .required = true, .what = "composite",
                          .choices = Composite::preset_names(), .help = "the rules per layer (Zennit's presets)"},
                  .params = {MethodParam::number("epsilon", d.epsilon, 0, 1e6, "Epsilon's stabiliser on Linear layers (every layer in epsilon)"),
                             MethodParam::number("gamma", d.gamma, 0, 1e6, "Gamma on convolutions (epsilon-gamma-box)")},
                  .description = "layer-wise relevance propagation under a composite's rules, BatchNorm merged (--canonizer)",
                  .is_signed = true,
                  .conserves = Conserves::Seed,
                  .fn = [](const MethodCall& c) -> Attribution {
                      // Unset options keep the caller's PresetOptions (whose defaults are the table's).
                      PresetOptions p = c.preset;
                      p.epsilon = c.number_if_given("epsilon").value_or(p.epsilon);
                      p.gamma = c.number_if_given("gamma").value_or(p.gamma);
                      const Composite composite = Composite::preset(c.spec.arg, p);
                      return {c.trace.relevance(composite, c.seed())[0], true, c.trace.canonizer_note(composite.canonizer())};
                  }});
}
