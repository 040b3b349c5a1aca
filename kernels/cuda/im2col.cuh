// im2col / col2im for the convolution-as-GEMM path (GB_CUDA_CONV=im2col), the
// scheme of Caffe and of the CPU backend: col[(c*R + r)*S + s, p*Q + q] =
// x[c, p*sh - ph + r*dh, q*sw - pw + s*dw] (0 in the padding), for a batch of
// images at once (one launch per chunk of images, not per image).
// col2im gathers, per input pixel, the col entries that read it, in the CPU
// backend's order (r, then s), so it matches that backend exactly.
#pragma once

#include "cuda_backend.h"

GB_GPU_BEGIN

// Images [0, images) of x into col[image] (each [CRS, PQ]).
__global__ void im2col_kernel(Conv2dGeom g, int64_t images, const float* x, float* col) {
    const int64_t PQ = g.P * g.Q, per_image = g.C * g.R * g.S * PQ, total = images * per_image;
    const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
    for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
        const int64_t pq = t % PQ, row = (t / PQ) % (g.C * g.R * g.S), n = t / per_image;
        const int64_t p = pq / g.Q, q = pq % g.Q, s = row % g.S, r = (row / g.S) % g.R, c = row / (g.R * g.S);
        const int64_t h = p * g.stride_h - g.pad_h + r * g.dil_h, w = q * g.stride_w - g.pad_w + s * g.dil_w;
        col[t] = h >= 0 && h < g.H && w >= 0 && w < g.W ? x[((n * g.C + c) * g.H + h) * g.W + w] : 0.f;
    }
}

// dx[image] from col[image] for images [0, images).
__global__ void col2im_kernel(Conv2dGeom g, int64_t images, const float* col, float* dx) {
    const int64_t PQ = g.P * g.Q, total = images * g.C * g.H * g.W;
    const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
    for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
        const int64_t w = t % g.W, h = (t / g.W) % g.H, c = (t / (g.H * g.W)) % g.C, n = t / (g.C * g.H * g.W);
        const float* coln = col + n * g.C * g.R * g.S * PQ;
        float sum = 0.f;
        for (int64_t r = 0; r < g.R; ++r) {
            const int64_t hh = h + g.pad_h - r * g.dil_h;
            if (hh < 0 || hh % g.stride_h != 0 || hh / g.stride_h >= g.P) continue;
            for (int64_t s = 0; s < g.S; ++s) {
                const int64_t ww = w + g.pad_w - s * g.dil_w;
                if (ww < 0 || ww % g.stride_w != 0 || ww / g.stride_w >= g.Q) continue;
                sum += coln[((c * g.R + r) * g.S + s) * PQ + (hh / g.stride_h) * g.Q + ww / g.stride_w];
            }
        }
        dx[t] = sum;
    }
}

inline void im2col(const Conv2dGeom& g, int64_t images, const float* x, float* col) {
    const int64_t total = images * g.C * g.R * g.S * g.P * g.Q;
    if (total > 0) launch(im2col_kernel, dim3(blocks_for(total)), dim3(kThreads), 0, g, images, x, col);
}

inline void col2im(const Conv2dGeom& g, int64_t images, const float* col, float* dx) {
    const int64_t total = images * g.C * g.H * g.W;
    if (total > 0) launch(col2im_kernel, dim3(blocks_for(total)), dim3(kThreads), 0, g, images, col, dx);
}

GB_GPU_END
