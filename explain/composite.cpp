#include "explain/composite.h"

#include <set>

#include "core/factory.h"
#include "core/error.h"

namespace gb::explain {

using layers::Rule;

using layers::Capability;

Composite& Composite::by_capability(Capability c, const Rule& rule) {
    by_capability_.emplace_back(c, rule);
    return *this;
}
Composite& Composite::by_name(const std::string& path, const Rule& rule) {
    by_name_.emplace_back(path, rule);
    return *this;
}
Composite& Composite::first_layer(const Rule& rule) {
    first_ = {rule};
    return *this;
}
Composite& Composite::last_linear(const Rule& rule) {
    last_ = {rule};
    return *this;
}
Composite& Composite::canonize(Canonizer c) {
    canonizer_ = c;
    return *this;
}

PresetOptions PresetOptions::for_normalization(const std::vector<float>& mean, const std::vector<float>& stddev) {
    GB_CHECK(!mean.empty() && mean.size() == stddev.size(), "input normalisation: ", mean.size(), " means but ",
             stddev.size(), " standard deviations");
    std::vector<float> low, high;
    for (size_t c = 0; c < mean.size(); ++c) {
        GB_CHECK(stddev[c] > 0.f, "input normalisation: standard deviation ", stddev[c], " of channel ", c,
                 " is not positive");
        low.push_back(-mean[c] / stddev[c]);
        high.push_back((1.f - mean[c]) / stddev[c]);
    }
    PresetOptions o;
    o.low = low[0];  // the scalars are channel 0's (a black pixel there); ZBox uses the per-channel bounds
    o.high = high[0];
    if (low.size() > 1) {
        o.low_bound = from_vector(low, Shape{static_cast<int64_t>(low.size())});
        o.high_bound = from_vector(high, Shape{static_cast<int64_t>(high.size())});
    }
    return o;
}

PresetOptions PresetOptions::with_range(float low, float high) {
    GB_CHECK(low < high, "input range: low ", low, " must be below high ", high);
    PresetOptions o;
    o.low = low;
    o.high = high;
    return o;
}

std::map<const layers::Layer*, Rule> Composite::resolve(layers::Layer& model) const {
    std::map<const layers::Layer*, Rule> out;
    const auto all = model.named_layers();
    const layers::Layer *first = nullptr, *last = nullptr;
    for (const auto& [path, l] : all) {
        if (!first && l->has_any(Capability::Convolution | Capability::FullyConnected)) first = l;
        if (l->has(Capability::FullyConnected)) last = l;
    }
    for (const auto& [path, l] : all)
        for (const auto& [capability, rule] : by_capability_)
            if (l->has(capability)) out[l] = rule;
    if (!first_.empty() && first) out[first] = first_[0];
    if (!last_.empty() && last) out[last] = last_[0];
    for (const auto& [name, rule] : by_name_) {
        const layers::Layer* hit = nullptr;
        for (const auto& [path, l] : all)
            if (path == name) hit = l;
        if (!hit) {
            std::string known;
            for (const auto& [path, l] : all)
                if (!path.empty() && l->children().empty()) known += (known.empty() ? "" : ", ") + path;
            GB_FAIL("composite '", name_, "': no layer named '", name, "' (layers: ", known, ")");
        }
        out[hit] = rule;
    }
    return out;
}

std::string Composite::describe() const {
    std::string s;
    for (const auto& [capability, rule] : by_capability_) s += "  " + layers::capability_name(capability) + ": " + rule.str() + "\n";
    if (!first_.empty()) s += "  first convolution or fully connected layer: " + first_[0].str() + "\n";
    if (!last_.empty()) s += "  last fully connected layer: " + last_[0].str() + "\n";
    for (const auto& [name, rule] : by_name_) s += "  " + name + ": " + rule.str() + "\n";
    s += "  canonizer: " + canonizer_name(canonizer_) +
         (canonizer_ == Canonizer::BatchNorm ? " (BatchNorm2d merged into the Conv2d/Linear before it)" : "") + "\n";
    return s;
}

std::vector<std::string> Composite::preset_names() {
    return {"epsilon-plus", "epsilon-plus-flat", "epsilon-gamma-box", "epsilon-alpha2-beta1",
            "epsilon-alpha2-beta1-flat", "epsilon", "lrp0"};
}

Composite Composite::preset(const std::string& name, const PresetOptions& o) {
    Composite c(name);
    c.canonize(o.canonizer);
    c.by_capability(Capability::AveragePool, Rule::norm());
    if (name == "epsilon" || name == "lrp0") {
        const Rule r = name == "lrp0" ? Rule::lrp0() : Rule::epsilon_rule(o.epsilon);
        return c.by_capability(Capability::Convolution, r).by_capability(Capability::FullyConnected, r);
    }
    c.by_capability(Capability::FullyConnected, Rule::epsilon_rule(o.epsilon));
    if (name == "epsilon-plus" || name == "epsilon-plus-flat") {
        c.by_capability(Capability::Convolution, Rule::zplus());
        if (name == "epsilon-plus-flat") c.first_layer(Rule::flat());
        return c;
    }
    if (name == "epsilon-alpha2-beta1" || name == "epsilon-alpha2-beta1-flat") {
        c.by_capability(Capability::Convolution, Rule::alpha_beta(2.f, 1.f));
        if (name == "epsilon-alpha2-beta1-flat") c.first_layer(Rule::flat());
        return c;
    }
    if (name == "epsilon-gamma-box") {
        GB_CHECK(o.low_bound.defined() || (o.low && o.high),
                 "composite epsilon-gamma-box: its ZBox rule needs the input's range, which is not assumed "
                 "(a normalised input is not in [0, 1]); give PresetOptions::for_normalization(mean, std) or "
                 "PresetOptions::with_range(low, high)");
        return c.by_capability(Capability::Convolution, Rule::gamma_rule(o.gamma))
            .first_layer(o.low_bound.defined() ? Rule::zbox(o.low_bound, o.high_bound) : Rule::zbox(*o.low, *o.high));
    }
    std::string list;
    for (const auto& n : preset_names()) list += (list.empty() ? "" : ", ") + n;
    GB_FAIL("unknown composite '", name, "' (known: ", list, ")");
}

Composite Composite::guided_backprop() {
    return Composite("guided-backprop").canonize(Canonizer::None).by_capability(Capability::Rectifier, Rule::guided_backprop());
}

Composite Composite::deconvnet() {
    return Composite("deconvnet").canonize(Canonizer::None).by_capability(Capability::Rectifier, Rule::deconvnet());
}

}  // namespace gb::explain
