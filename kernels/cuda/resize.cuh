// Bilinear resize of [planes, H, W] -> [planes, OH, OW] with the taps of
// kernels/common/resize.h (PyTorch's rules). Forward: a thread per output.
// Backward: dx is zeroed, then a thread per dy element adds its four weighted
// shares with atomicAdd (the order of additions, unlike the CPU's, varies).
#pragma once

#include "../common/resize.h"
#include "cuda_backend.h"

GB_GPU_BEGIN

struct ResizeArgs {
    int64_t planes, H, W, OH, OW;
    bool align_corners;
};

__global__ void resize_bilinear_forward_kernel(ResizeArgs a, const float* x, float* y) {
    const int64_t total = a.planes * a.OH * a.OW, stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
    for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
        const int64_t ow = t % a.OW, oh = (t / a.OW) % a.OH, pl = t / (a.OH * a.OW);
        const LinearTaps th = linear_taps(a.H, a.OH, a.align_corners, oh);
        const LinearTaps tw = linear_taps(a.W, a.OW, a.align_corners, ow);
        const float* row0 = x + (pl * a.H + th.i0) * a.W;
        const float* row1 = x + (pl * a.H + th.i1) * a.W;
        y[t] = th.w0 * (tw.w0 * row0[tw.i0] + tw.w1 * row0[tw.i1]) +
               th.w1 * (tw.w0 * row1[tw.i0] + tw.w1 * row1[tw.i1]);
    }
}

__global__ void resize_bilinear_backward_kernel(ResizeArgs a, const float* dy, float* dx) {
    const int64_t total = a.planes * a.OH * a.OW, stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
    for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
        const int64_t ow = t % a.OW, oh = (t / a.OW) % a.OH, pl = t / (a.OH * a.OW);
        const LinearTaps th = linear_taps(a.H, a.OH, a.align_corners, oh);
        const LinearTaps tw = linear_taps(a.W, a.OW, a.align_corners, ow);
        float* row0 = dx + (pl * a.H + th.i0) * a.W;
        float* row1 = dx + (pl * a.H + th.i1) * a.W;
        const float g = dy[t];
        atomicAdd(row0 + tw.i0, th.w0 * tw.w0 * g);
        atomicAdd(row0 + tw.i1, th.w0 * tw.w1 * g);
        atomicAdd(row1 + tw.i0, th.w1 * tw.w0 * g);
        atomicAdd(row1 + tw.i1, th.w1 * tw.w1 * g);
    }
}

void CudaBackend::resize_bilinear_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                          bool align_corners, const float* x, float* y) {
    const int64_t total = planes * OH * OW;
    if (total <= 0) return;
    select_device();
    launch(resize_bilinear_forward_kernel, dim3(blocks_for(total)), dim3(kThreads), 0,
           ResizeArgs{planes, H, W, OH, OW, align_corners}, x, y);
}

void CudaBackend::resize_bilinear_backward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                           bool align_corners, const float* dy, float* dx) {
    if (planes <= 0) return;
    fill(planes * H * W, 0.f, dx);
    const int64_t total = planes * OH * OW;
    if (total <= 0) return;
    launch(resize_bilinear_backward_kernel, dim3(blocks_for(total)), dim3(kThreads), 0,
           ResizeArgs{planes, H, W, OH, OW, align_corners}, dy, dx);
}

GB_GPU_END
