// Composite: which LRP rule each layer gets — by layer type, by layer path,
// and by position (the first linear-like layer, the last Linear) — resolved
// against a model. Precedence: path, then position, then type; a layer with no
// rule keeps its default treatment (ReLU, BatchNorm, Dropout: pass; MaxPool:
// winner-take-all routing; Conv2d/Linear: gradient). The presets are Zennit's
// (0.5.1): epsilon-plus, epsilon-plus-flat, epsilon-gamma-box,
// epsilon-alpha2-beta1, epsilon-alpha2-beta1-flat, plus "epsilon" (every
// linear-like layer Epsilon) and "lrp0".
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "layers/layer.h"
#include "layers/rule.h"

namespace gb::explain {

struct PresetOptions {
    float epsilon = 1e-6f;  // Epsilon on Linear layers (and everywhere in "epsilon")
    float gamma = 0.25f;    // Gamma on convolutions (epsilon-gamma-box)
    float low = 0.f, high = 1.f;  // ZBox bounds of the first layer: the input range after normalisation
    Tensor low_bound, high_bound;  // per-channel ZBox bounds [C]; used instead of low/high when defined
};

class Composite {
public:
    explicit Composite(std::string name = "custom") : name_(std::move(name)) {}

    Composite& by_type(const std::string& type, const layers::Rule& rule);  // "Conv2d", "Linear", "AvgPool2d" ...
    Composite& by_name(const std::string& path, const layers::Rule& rule);  // "features.0"
    Composite& first_layer(const layers::Rule& rule);  // the first Conv2d or Linear in forward order
    Composite& last_linear(const layers::Rule& rule);  // the last Linear (the output layer)

    // Layer -> rule for every layer of `model` that gets one; gb::Error for a path that names no layer.
    std::map<const layers::Layer*, layers::Rule> resolve(layers::Layer& model) const;
    const std::string& name() const { return name_; }
    // One line per assignment, for reports and `glassbox explain --list`.
    std::string describe() const;

    static Composite preset(const std::string& name, const PresetOptions& options = {});
    static std::vector<std::string> preset_names();

private:
    std::string name_;
    std::vector<std::pair<std::string, layers::Rule>> by_type_, by_name_;
    std::vector<layers::Rule> first_, last_;
};

}  // namespace gb::explain
