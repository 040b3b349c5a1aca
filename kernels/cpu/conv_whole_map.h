// Convolutions on maps so small that every output pixel's window covers the
// whole input map (VGG-11's 3x3 layers on 2x2 maps; a 3x3 kernel on a 1x1 map):
// then the convolution of an image is a linear layer from its C*H*W inputs to
// its K*P*Q outputs, with the "whole-map" weight
//   wm[k*PQ + p*Q + q][c*HW + h*W + v] = w[k][c][h - p*sh + ph][v - q*sw + pw],
// and a batch is one GEMM with the images as rows: y = x wm^T, dx = dy wm,
// dwm = dy^T x (then folded onto the taps). im2col would also multiply the
// padding taps (2.25x the useful flops on 2x2 maps). Building wm
// (K*PQ x C*HW floats) pays off on a batch of images; one image keeps conv.cpp's
// per-image paths, which read only w. Used by conv.cpp.
#pragma once

#include "../geometry.h"

namespace gb::kernels::cpu {

// Whether g takes these paths: dilation 1, every window covering the map, at
// least 8 images and wm at most 64 MiB.
bool whole_map(const Conv2dGeom& g);
// The passes of CpuBackend's convolution for such geometries (same contracts;
// dw is overwritten).
void whole_map_forward(const Conv2dGeom& g, const float* x, const float* w, const float* bias, bool relu, float* y);
void whole_map_backward_data(const Conv2dGeom& g, const float* dy, const float* w, float* dx);
void whole_map_backward_weight(const Conv2dGeom& g, const float* x, const float* dy, float* dw);

}  // namespace gb::kernels::cpu
