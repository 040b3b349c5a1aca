// Composite: which rule each layer gets — by capability (layers/layer.h: convolutions,
// fully connected layers, average pools, rectifiers ...), by layer path, and by
// position (the first convolution or fully connected layer, the last fully
// connected one) — resolved against a model. Precedence: path, then position, then
// capability; a layer with no rule keeps its default treatment (ReLU, BatchNorm,
// Dropout: pass; MaxPool: winner-take-all routing; Conv2d/Linear: gradient). The
// presets are Zennit's (0.5.1): epsilon-plus, epsilon-plus-flat, epsilon-gamma-box,
// epsilon-alpha2-beta1, epsilon-alpha2-beta1-flat, plus "epsilon" (every
// linear-like layer Epsilon) and "lrp0"; guided_backprop() and deconvnet() give the
// rectifiers their rules. A composite also names its canonizer (canonizer.h):
// BatchNorm merging by default, as Zennit's users attach SequentialMergeBatchNorm;
// Canonizer::None explains BatchNorm models as they are.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "canonizer.h"
#include "../layers/layer.h"
#include "../layers/rule.h"

namespace gb::explain {

struct PresetOptions {
    float epsilon = 1e-6f;  // Epsilon on Linear layers (and everywhere in "epsilon")
    float gamma = 0.25f;    // Gamma on convolutions (epsilon-gamma-box)
    // The range of the model's input (ZBox bounds of the first layer in epsilon-gamma-box;
    // `low` is also the value of a black pixel for perturbation baselines): scalars, or per
    // channel [C] (low_bound/high_bound, used instead when defined). Never assumed: an
    // epsilon-gamma-box composite without them is a gb::Error, because a normalised input
    // is not in [0, 1]. for_normalization() derives them from a mean/std normalisation.
    std::optional<float> low, high;
    Tensor low_bound, high_bound;
    Canonizer canonizer = Canonizer::BatchNorm;

    // Bounds of pixels in [0, 1] after (x - mean[c]) / stddev[c]; one entry = every channel.
    static PresetOptions for_normalization(const std::vector<float>& mean, const std::vector<float>& stddev);
    // Bounds [low, high] for an input that is not normalised (e.g. [0, 1] pixels).
    static PresetOptions with_range(float low, float high);
};

class Composite {
public:
    explicit Composite(std::string name = "custom") : name_(std::move(name)) {}

    Composite& by_capability(layers::Capability c, const layers::Rule& rule);  // every layer that has c
    Composite& by_name(const std::string& path, const layers::Rule& rule);  // "features.0"
    Composite& first_layer(const layers::Rule& rule);  // the first convolution or fully connected layer in forward order
    Composite& last_linear(const layers::Rule& rule);  // the last fully connected layer (the output layer)
    Composite& canonize(Canonizer c);                  // default: Canonizer::BatchNorm
    Canonizer canonizer() const { return canonizer_; }

    // Layer -> rule for every layer of `model` that gets one; gb::Error for a path that names no layer.
    std::map<const layers::Layer*, layers::Rule> resolve(layers::Layer& model) const;
    const std::string& name() const { return name_; }
    // One line per assignment, for reports and `glassbox explain --list`.
    std::string describe() const;

    static Composite preset(const std::string& name, const PresetOptions& options = {});
    static std::vector<std::string> preset_names();
    // Rectifier rules on every rectifier, nothing else (Canonizer::None: gradient methods see the model as it is).
    static Composite guided_backprop();
    static Composite deconvnet();

private:
    std::string name_;
    std::vector<std::pair<layers::Capability, layers::Rule>> by_capability_;
    std::vector<std::pair<std::string, layers::Rule>> by_name_;
    std::vector<layers::Rule> first_, last_;
    Canonizer canonizer_ = Canonizer::BatchNorm;
};

}  // namespace gb::explain
