// Element math of the activations, shared by the CPU and CUDA backends.
// ReLU (PyTorch torch.nn.ReLU): y = max(x, 0); NaN propagates like PyTorch's
// clamp_min. Its derivative is taken as 0 at x = 0 (PyTorch's choice).
#pragma once

#include "../../core/hd.h"

namespace gb::kernels {

GB_HD inline float relu(float x) { return x < 0.f ? 0.f : x; }

// dx for one element; `x` may be the ReLU's input or its output (same sign test).
GB_HD inline float relu_backward(float x, float dy) { return x > 0.f ? dy : 0.f; }

}  // namespace gb::kernels
