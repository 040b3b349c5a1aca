// Model registry: make a model by name.
//   vgg11, vgg13, vgg16, vgg19 and vgg11-bn ... vgg19-bn (also spelled vgg16_bn):
//     torchvision's layouts (features with every max-pool, AdaptiveAvgPool2d((7, 7)),
//     classifier 512*7*7 -> 4096 -> 4096 -> classes); defaults 3x224x224, 1000 classes;
//     any input side >= 32 works.
//   vgg11-small ... vgg19-small and vgg11-bn-small ... vgg19-bn-small: the small-input
//     variants (same widths, pools that would go below 1x1 left out, no average pool,
//     classifier 512-512); defaults 1x28x28, 10 classes.
//   vgg-mini, vgg-mini-bn: 28x28 grey images (conv32-conv32-pool-conv64-conv64-pool,
//     linear 256, dropout); defaults 1x28x28, 10 classes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "vgg.h"

namespace gb::models {

// 0 = the family's default (see above).
struct ModelOptions {
    int64_t in_channels = 0;
    int64_t input_size = 0;
    int64_t num_classes = 0;
};

std::vector<std::string> model_names();
// model_names() joined by ", " (for help texts and messages).
std::string model_names_text();
// The configuration `name` has for these options; gb::Error listing the names otherwise.
VggConfig model_config(const std::string& name, const ModelOptions& options = {});
std::shared_ptr<Vgg> make_model(const std::string& name, const ModelOptions& options = {},
                                Generator& gen = default_generator());

// torchvision's make_layers configurations by depth (11, 13, 16, 19); 0 = max-pool.
const std::vector<int64_t>& vgg_features(int depth);

}  // namespace gb::models
