// Model registry: make a model by name. Names: vgg-mini (28x28 grey images:
// conv32-conv32-pool-conv64-conv64-pool, linear 256, dropout), vgg11/13/16/19
// and their -bn variants (torchvision's widths 64..512, classifier 512-512).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/vgg.h"

namespace gb::models {

struct ModelOptions {
    int64_t in_channels = 1;
    int64_t input_size = 28;
    int64_t num_classes = 10;
};

std::vector<std::string> model_names();
// The configuration `name` has for these options; gb::Error listing the names otherwise.
VggConfig model_config(const std::string& name, const ModelOptions& options = {});
std::shared_ptr<Vgg> make_model(const std::string& name, const ModelOptions& options = {},
                                Generator& gen = default_generator());

}  // namespace gb::models
