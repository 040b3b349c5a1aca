// A user-defined LRP rule and a composite that uses it, on a freshly initialised vgg-mini.
// The rule keeps only positive inputs and positive weights ("x+ W+"): on inputs without
// negative entries it must equal AlphaBeta(1, 0), which the program checks at the end.
#include <glassbox/core/factory.h>
#include <glassbox/explain/composite.h>
#include <glassbox/explain/trace.h>
#include <glassbox/layers/rule.h>
#include <glassbox/models/registry.h>

#include <algorithm>
#include <cmath>
#include <iostream>

using namespace gb;

// max(v, 0) element-wise, on a host copy (fine for an example; built-in rules use backend primitives).
static Tensor positive_part(const Tensor& t) {
    std::vector<float> v = t.to_vector<float>();
    for (float& x : v) x = std::max(x, 0.f);
    return from_vector(v, t.shape(), t.device());
}

int main() try {
    layers::CustomRule positive;
    layers::RuleTerm term;
    term.input = positive_part;                                           // x -> x+
    term.param = [](const Tensor& p, bool /*is_bias*/) { return positive_part(p); };  // W -> W+, b -> b+
    term.cache_tag = "positive-weights";  // W+ is computed once per weight version, then reused
    positive.groups = {layers::RuleGroup{{term}, 1.f, 0}};
    positive.name = "x+W+";

    // Zennit-style composite: the custom rule on every convolution, Epsilon on the dense layers,
    // Flat on the first layer (a per-layer rule by name would be .by_name("features.0", ...)).
    explain::Composite mine("custom");
    mine.by_capability(layers::Capability::Convolution, layers::Rule::custom_rule(positive))
        .by_capability(layers::Capability::FullyConnected, layers::Rule::epsilon_rule(1e-6f))
        .first_layer(layers::Rule::flat());

    Generator gen(3);
    auto model = models::make_model("vgg-mini", {}, gen);
    const Tensor x = uniform(Shape{2, 1, 28, 28}, 0.f, 1.f, gen);
    explain::Trace trace(*model, x);
    const Tensor seed = trace.seed({explain::Target::of(3)});
    const Tensor r = trace.relevance(mine, seed)[0];

    // The same composite with AlphaBeta(1, 0) instead of the custom rule.
    explain::Composite reference("alpha1-beta0");
    reference.by_capability(layers::Capability::Convolution, layers::Rule::alpha_beta(1.f, 0.f))
        .by_capability(layers::Capability::FullyConnected, layers::Rule::epsilon_rule(1e-6f))
        .first_layer(layers::Rule::flat());
    const auto a = r.to_vector<float>(), b = trace.relevance(reference, seed)[0].to_vector<float>();
    float diff = 0, scale = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        diff = std::max(diff, std::abs(a[i] - b[i]));
        scale = std::max(scale, std::abs(b[i]));
    }
    std::cout << "relevance sum per image: ";
    for (int64_t n = 0; n < 2; ++n) {
        const auto v = r.narrow(n, 1).to_vector<float>();
        double s = 0;
        for (float f : v) s += f;
        std::cout << s << " ";
    }
    std::cout << "\nmax |custom - AlphaBeta(1, 0)| / max |AlphaBeta(1, 0)| = " << diff / scale << "\n";
    return diff <= 1e-5f * scale ? 0 : 1;
} catch (const std::exception& e) {
    std::cerr << "custom_rule: " << e.what() << "\n";
    return 1;
}
