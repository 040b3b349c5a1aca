// Dropout mask value shared by the CPU and CUDA backends (inverted dropout, as
// PyTorch's nn.Dropout): kept elements are scaled by 1 / (1 - p) at training
// time so evaluation is the identity. u is philox_uniform_at(seed, offset, i).
#pragma once

#include "../../core/hd.h"

namespace gb::kernels {

// 1 / (1 - p), computed once per call so every kept element gets the same value.
GB_HD inline float dropout_scale(float p) { return 1.f / (1.f - p); }

// mask = (u >= p) * scale; p = 0 keeps everything since u >= 0.
GB_HD inline float dropout_mask(float u, float p, float scale) { return u >= p ? scale : 0.f; }

}  // namespace gb::kernels
