// The VGG configuration of a plain PyTorch state dict (torchvision's VGG, no
// glassbox metadata), from tensor names and shapes alone: convolutions at
// features.N (weight [out, in, 3, 3] + bias), BatchNorm2d at N+1 when present
// (weight, bias, running_mean, running_var; num_batches_tracked is ignored), the
// gaps between them are ReLU and MaxPool2d as torchvision's make_layers numbers
// them, and Linear layers at classifier.0, .3, .6 ... (Linear, ReLU, Dropout).
// in_channels comes from features.0, num_classes from the last Linear, the hidden
// widths from the others. classifier.0 taking last_width*7*7 inputs means
// torchvision's AdaptiveAvgPool2d((7, 7)) (input_size: options.input_size, else 224);
// last_width*s*s for another s means the small layout with input s*2^pools.
// The features are taken to end with one max-pool, as every torchvision VGG does
// (a state dict cannot show trailing pools). The name is the registry name whose
// configuration is exactly this one, else "vgg-custom". A state dict that fits
// no VGG gets one gb::Error listing every problem ("does not fit any VGG").
#pragma once

#include "../io/safetensors.h"
#include "registry.h"
#include "vgg.h"

namespace gb::models {

VggConfig infer_vgg_config(const io::SafeTensors& file, const ModelOptions& options = {});

}  // namespace gb::models
