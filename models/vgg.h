// The VGG family (Simonyan & Zisserman 2015): a `features` stack of 3x3
// convolutions (padding 1) with ReLU, optional BatchNorm, and 2x2 max-pools,
// then (torchvision layout) `avgpool` = AdaptiveAvgPool2d((7, 7)), flatten and a
// `classifier` of Linear-ReLU-Dropout blocks and a last Linear. Parameter names,
// module indices and initialisation follow torchvision (features.0.weight,
// classifier.3.bias ...), so the same tensors mean the same thing in both.
// Two layouts: avgpool > 0 is torchvision's (every pool kept, any input whose
// side is at least 2^pools); avgpool == 0 is the small-input layout (a pool
// that would shrink the map below 1x1 is left out, the last map is flattened
// as it is, the input must have exactly input_size).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../core/rng.h"
#include "../layers/sequential.h"

namespace gb::models {

// Plausibility limits on a configuration (from a checkpoint's metadata, a state
// dict's shapes or options), so a corrupt or hostile file is refused with the
// value named instead of trying to allocate petabytes. VGG-16 at 224x224 uses
// widths <= 4096 and 1000 classes.
constexpr int64_t kMaxWidth = 1 << 16;      // channels of a convolution or units of a hidden layer
constexpr int64_t kMaxInputSize = 1 << 13;  // pixels per side
constexpr int64_t kMaxInChannels = 1 << 10;
constexpr int64_t kMaxClasses = 1 << 20;

struct VggConfig {
    std::string name;               // registry name, e.g. "vgg11-bn"
    std::vector<int64_t> features;  // conv widths; 0 = 2x2 max-pool
    bool batch_norm = false;
    std::vector<int64_t> hidden;    // classifier hidden widths (each Linear-ReLU-Dropout)
    float dropout = 0.5f;
    int64_t in_channels = 1, input_size = 28, num_classes = 10;
    // AdaptiveAvgPool2d((avgpool, avgpool)) between features and classifier
    // (torchvision: 7); 0 = none, the small-input layout (metadata without the key).
    int64_t avgpool = 0;

    // Number of max-pools in `features` (as configured, before any is left out).
    int64_t pools() const;

    // Configuration as strings, for checkpoint metadata; from_metadata inverts it.
    std::map<std::string, std::string> to_metadata() const;
    static VggConfig from_metadata(const std::map<std::string, std::string>& meta, const std::string& source);
};

class Vgg : public layers::Layer {
public:
    explicit Vgg(const VggConfig& config, Generator& gen = default_generator());
    std::string type() const override { return "VGG"; }
    std::string describe() const override;

    const VggConfig& config() const { return config_; }
    layers::Sequential& features() { return *features_; }
    layers::Sequential& classifier() { return *classifier_; }
    // Spatial size of the map that is flattened into the classifier (at input_size).
    int64_t feature_size() const { return feature_size_; }
    int64_t feature_channels() const { return feature_channels_; }

protected:
    Tensor forward(const Tensor& x) override;

private:
    VggConfig config_;
    std::shared_ptr<layers::Sequential> features_, classifier_;
    std::shared_ptr<layers::Layer> avgpool_;  // null in the small layout
    int64_t min_input_ = 1;                   // smallest input side (torchvision layout)
    int64_t feature_size_ = 0, feature_channels_ = 0;
};

}  // namespace gb::models
