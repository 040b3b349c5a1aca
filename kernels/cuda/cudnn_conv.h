// Convolution through cuDNN (GB_CUDNN builds): forward and both backwards of
// the backend contract (groups = 1, NCHW float32, cross-correlation, no bias:
// the backend adds biases with its own kernels). FP32 arithmetic only
// (CUDNN_FMA_MATH: no TF32 tensor cores), so results stay within float rounding
// of the CPU backend's. The algorithm is cuDNN's heuristic first choice,
// asked once per geometry and GPU.
#pragma once

#include "../geometry.h"

namespace gb::kernels::gpu {

void cudnn_conv2d_forward(int device, const Conv2dGeom& g, const float* x, const float* w, float* y);
void cudnn_conv2d_backward_data(int device, const Conv2dGeom& g, const float* dy, const float* w, float* dx);
void cudnn_conv2d_backward_weight(int device, const Conv2dGeom& g, const float* x, const float* dy, float* dw);

}  // namespace gb::kernels::gpu
