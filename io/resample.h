// Antialiased resize of images on the host: a separable triangle filter whose
// support is scaled by the downscale factor (PIL's ImagingResample with BILINEAR,
// which torchvision's resize(antialias=True) reproduces), horizontal pass first,
// a pass skipped when its size does not change. Downscaling averages every source
// pixel (never point sampling); upscaling is plain bilinear interpolation.
// Weights from kernels/common/resize.h (aa_window, aa_weight).
#pragma once

#include <cstdint>

#include "../core/tensor.h"

namespace gb::io {

// image: float32 [..., H, W] on the CPU (leading dimensions are independent planes)
// -> [..., height, width].
Tensor resize_antialiased(const Tensor& image, int64_t height, int64_t width);

}  // namespace gb::io
