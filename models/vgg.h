// The VGG family (Simonyan & Zisserman 2015) for small images: a `features`
// stack of 3x3 convolutions (padding 1) with ReLU, optional BatchNorm, and 2x2
// max-pools, then flatten and a `classifier` of Linear-ReLU-Dropout blocks.
// Parameter names and initialisation follow torchvision (features.0.weight,
// classifier.3.bias ...), so the same tensors mean the same thing in both.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "layers/sequential.h"

namespace gb::models {

struct VggConfig {
    std::string name;               // registry name, e.g. "vgg11-bn"
    std::vector<int64_t> features;  // conv widths; 0 = 2x2 max-pool
    bool batch_norm = false;
    std::vector<int64_t> hidden;    // classifier hidden widths (each Linear-ReLU-Dropout)
    float dropout = 0.5f;
    int64_t in_channels = 1, input_size = 28, num_classes = 10;

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
    // Spatial size of the feature map that is flattened into the classifier.
    int64_t feature_size() const { return feature_size_; }
    int64_t feature_channels() const { return feature_channels_; }

protected:
    Tensor forward(const Tensor& x) override;

private:
    VggConfig config_;
    std::shared_ptr<layers::Sequential> features_, classifier_;
    int64_t feature_size_ = 0, feature_channels_ = 0;
};

}  // namespace gb::models
