// Structured pruning surgery: a VGG with some filters of its convolutions
// removed, as a genuinely smaller model (narrower VggConfig::features). The kept
// filters' weights and biases, the following BatchNorm's parameters and running
// statistics, the next convolution's kept input channels and, after the last
// convolution, the first Linear's columns of the kept channels' blocks (flatten
// order C*H*W, also behind torchvision's avgpool) are copied; everything else is
// copied unchanged. The result computes what the source computes with the
// removed filters' activations (after their ReLU) set to zero. Which filters to
// keep is the caller's choice (explain/pruning.h ranks them).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vgg.h"

namespace gb::models {

// keep[l]: the filters (output channels) of the l-th Conv2d of `features` that stay, in any
// order (the pruned model keeps them in ascending order). gb::Error when keep has not one
// entry per convolution, an index is out of range or repeated, or a layer would keep none.
// The model (not modified) must be on the CPU; the result is on the CPU, in eval mode.
std::shared_ptr<Vgg> prune(Vgg& model, const std::vector<std::vector<int64_t>>& keep);

// Paths of the Conv2d layers of a VGG's features, in forward order ("features.0", ...).
std::vector<std::string> conv_paths(Vgg& model);

}  // namespace gb::models
