#include "explain/composite.h"

#include <set>

#include "core/error.h"

namespace gb::explain {

using layers::Rule;

Composite& Composite::by_type(const std::string& type, const Rule& rule) {
    by_type_.emplace_back(type, rule);
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

std::map<const layers::Layer*, Rule> Composite::resolve(layers::Layer& model) const {
    std::map<const layers::Layer*, Rule> out;
    const auto all = model.named_layers();
    const layers::Layer *first = nullptr, *last = nullptr;
    for (const auto& [path, l] : all) {
        const std::string t = l->type();
        if (!first && (t == "Conv2d" || t == "Linear")) first = l;
        if (t == "Linear") last = l;
    }
    for (const auto& [path, l] : all)
        for (const auto& [type, rule] : by_type_)
            if (l->type() == type) out[l] = rule;
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
    for (const auto& [type, rule] : by_type_) s += "  " + type + ": " + rule.str() + "\n";
    if (!first_.empty()) s += "  first Conv2d/Linear: " + first_[0].str() + "\n";
    if (!last_.empty()) s += "  last Linear: " + last_[0].str() + "\n";
    for (const auto& [name, rule] : by_name_) s += "  " + name + ": " + rule.str() + "\n";
    return s;
}

std::vector<std::string> Composite::preset_names() {
    return {"epsilon-plus", "epsilon-plus-flat", "epsilon-gamma-box", "epsilon-alpha2-beta1",
            "epsilon-alpha2-beta1-flat", "epsilon", "lrp0"};
}

Composite Composite::preset(const std::string& name, const PresetOptions& o) {
    Composite c(name);
    c.by_type("AvgPool2d", Rule::norm()).by_type("AdaptiveAvgPool2d", Rule::norm());
    if (name == "epsilon" || name == "lrp0") {
        const Rule r = name == "lrp0" ? Rule::lrp0() : Rule::epsilon_rule(o.epsilon);
        return c.by_type("Conv2d", r).by_type("Linear", r);
    }
    c.by_type("Linear", Rule::epsilon_rule(o.epsilon));
    if (name == "epsilon-plus" || name == "epsilon-plus-flat") {
        c.by_type("Conv2d", Rule::zplus());
        if (name == "epsilon-plus-flat") c.first_layer(Rule::flat());
        return c;
    }
    if (name == "epsilon-alpha2-beta1" || name == "epsilon-alpha2-beta1-flat") {
        c.by_type("Conv2d", Rule::alpha_beta(2.f, 1.f));
        if (name == "epsilon-alpha2-beta1-flat") c.first_layer(Rule::flat());
        return c;
    }
    if (name == "epsilon-gamma-box")
        return c.by_type("Conv2d", Rule::gamma_rule(o.gamma))
            .first_layer(o.low_bound.defined() ? Rule::zbox(o.low_bound, o.high_bound) : Rule::zbox(o.low, o.high));
    std::string list;
    for (const auto& n : preset_names()) list += (list.empty() ? "" : ", ") + n;
    GB_FAIL("unknown composite '", name, "' (known: ", list, ")");
}

}  // namespace gb::explain
