// Max, average and adaptive-average pooling over each (n, c) plane. Forwards
// run a thread per output; backwards run a thread per input element and gather
// from the windows that contain it (no atomics), adding in the CPU backend's
// order, so results match it exactly. Window arithmetic: kernels/common/pool.h.
#pragma once

#include "../common/pool.h"
#include "cuda_backend.h"

GB_GPU_BEGIN

#define GB_GRID_STRIDE(t, total)                                                            \
    for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < (total); \
         t += static_cast<int64_t>(blockDim.x) * gridDim.x)

// First maximum in row-major window order; NaN wins (PyTorch propagates it).
__global__ void maxpool_forward_kernel(Pool2dGeom g, const float* x, float* y, int32_t* indices) {
    GB_GRID_STRIDE(t, g.y_numel()) {
        const int64_t q = t % g.Q, p = (t / g.Q) % g.P, pl = t / (g.P * g.Q);
        const float* xp = x + pl * g.H * g.W;
        const Span hs = pool_window(p, g.stride_h, g.pad_h, g.kh, g.H);
        const Span ws = pool_window(q, g.stride_w, g.pad_w, g.kw, g.W);
        int64_t best_i = hs.start * g.W + ws.start;
        float best = -INFINITY;
        for (int64_t h = hs.start; h < hs.end; ++h)
            for (int64_t w = ws.start; w < ws.end; ++w) {
                const float v = xp[h * g.W + w];
                if (v > best || (isnan(v) && !isnan(best))) {
                    best = v;
                    best_i = h * g.W + w;
                }
            }
        y[t] = best;
        indices[t] = static_cast<int32_t>(best_i);
    }
}

__global__ void maxpool_backward_kernel(Pool2dGeom g, const float* dy, const int32_t* indices, float* dx) {
    GB_GRID_STRIDE(t, g.x_numel()) {
        const int64_t w = t % g.W, h = (t / g.W) % g.H, pl = t / (g.H * g.W);
        const float* gp = dy + pl * g.P * g.Q;
        const int32_t* ip = indices + pl * g.P * g.Q;
        const OutRange pr = windows_containing(h, g.stride_h, g.pad_h, g.kh, g.P);
        const OutRange qr = windows_containing(w, g.stride_w, g.pad_w, g.kw, g.Q);
        float s = 0.f;
        for (int64_t p = pr.first; p <= pr.last; ++p)
            for (int64_t q = qr.first; q <= qr.last; ++q)
                if (ip[p * g.Q + q] == h * g.W + w) s += gp[p * g.Q + q];
        dx[t] = s;
    }
}

__global__ void avgpool_forward_kernel(Pool2dGeom g, const float* x, float* y) {
    GB_GRID_STRIDE(t, g.y_numel()) {
        const int64_t q = t % g.Q, p = (t / g.Q) % g.P, pl = t / (g.P * g.Q);
        const float* xp = x + pl * g.H * g.W;
        const Span hs = pool_window(p, g.stride_h, g.pad_h, g.kh, g.H);
        const Span ws = pool_window(q, g.stride_w, g.pad_w, g.kw, g.W);
        float s = 0.f;
        for (int64_t h = hs.start; h < hs.end; ++h)
            for (int64_t w = ws.start; w < ws.end; ++w) s += xp[h * g.W + w];
        y[t] = s / avg_divisor(g, p, q);
    }
}

__global__ void avgpool_backward_kernel(Pool2dGeom g, const float* dy, float* dx) {
    GB_GRID_STRIDE(t, g.x_numel()) {
        const int64_t w = t % g.W, h = (t / g.W) % g.H, pl = t / (g.H * g.W);
        const float* gp = dy + pl * g.P * g.Q;
        const OutRange pr = windows_containing(h, g.stride_h, g.pad_h, g.kh, g.P);
        const OutRange qr = windows_containing(w, g.stride_w, g.pad_w, g.kw, g.Q);
        float s = 0.f;
        for (int64_t p = pr.first; p <= pr.last; ++p)
            for (int64_t q = qr.first; q <= qr.last; ++q) s += gp[p * g.Q + q] / avg_divisor(g, p, q);
        dx[t] = s;
    }
}

__global__ void adaptive_avgpool_forward_kernel(int64_t total, int64_t H, int64_t W, int64_t P, int64_t Q,
                                                const float* x, float* y) {
    GB_GRID_STRIDE(t, total) {
        const int64_t q = t % Q, p = (t / Q) % P, pl = t / (P * Q);
        const float* xp = x + pl * H * W;
        const Span hs = adaptive_window(p, H, P), ws = adaptive_window(q, W, Q);
        float s = 0.f;
        for (int64_t h = hs.start; h < hs.end; ++h)
            for (int64_t w = ws.start; w < ws.end; ++w) s += xp[h * W + w];
        y[t] = s / static_cast<float>((hs.end - hs.start) * (ws.end - ws.start));
    }
}

__global__ void adaptive_avgpool_backward_kernel(int64_t total, int64_t H, int64_t W, int64_t P, int64_t Q,
                                                 const float* dy, float* dx) {
    GB_GRID_STRIDE(t, total) {
        const int64_t w = t % W, h = (t / W) % H, pl = t / (H * W);
        const float* gp = dy + pl * P * Q;
        const OutRange pr = adaptive_windows_containing(h, H, P), qr = adaptive_windows_containing(w, W, Q);
        float s = 0.f;
        for (int64_t p = pr.first; p <= pr.last; ++p) {
            const Span hs = adaptive_window(p, H, P);
            if (h < hs.start || h >= hs.end) continue;
            for (int64_t q = qr.first; q <= qr.last; ++q) {
                const Span ws = adaptive_window(q, W, Q);
                if (w < ws.start || w >= ws.end) continue;
                s += gp[p * Q + q] / static_cast<float>((hs.end - hs.start) * (ws.end - ws.start));
            }
        }
        dx[t] = s;
    }
}

#undef GB_GRID_STRIDE

void CudaBackend::maxpool2d_forward(const Pool2dGeom& g, const float* x, float* y, int32_t* indices) {
    if (g.y_numel() <= 0) return;
    select_device();
    launch(maxpool_forward_kernel, dim3(blocks_for(g.y_numel())), dim3(kThreads), 0, g, x, y, indices);
}
void CudaBackend::maxpool2d_backward(const Pool2dGeom& g, const float* dy, const int32_t* indices, float* dx) {
    if (g.x_numel() <= 0) return;
    select_device();
    launch(maxpool_backward_kernel, dim3(blocks_for(g.x_numel())), dim3(kThreads), 0, g, dy, indices, dx);
}
void CudaBackend::avgpool2d_forward(const Pool2dGeom& g, const float* x, float* y) {
    if (g.y_numel() <= 0) return;
    select_device();
    launch(avgpool_forward_kernel, dim3(blocks_for(g.y_numel())), dim3(kThreads), 0, g, x, y);
}
void CudaBackend::avgpool2d_backward(const Pool2dGeom& g, const float* dy, float* dx) {
    if (g.x_numel() <= 0) return;
    select_device();
    launch(avgpool_backward_kernel, dim3(blocks_for(g.x_numel())), dim3(kThreads), 0, g, dy, dx);
}
void CudaBackend::adaptive_avgpool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q,
                                             const float* x, float* y) {
    const int64_t total = planes * P * Q;
    if (total <= 0) return;
    select_device();
    launch(adaptive_avgpool_forward_kernel, dim3(blocks_for(total)), dim3(kThreads), 0, total, H, W, P, Q, x, y);
}
void CudaBackend::adaptive_avgpool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q,
                                              const float* dy, float* dx) {
    const int64_t total = planes * H * W;
    if (total <= 0) return;
    select_device();
    launch(adaptive_avgpool_backward_kernel, dim3(blocks_for(total)), dim3(kThreads), 0, total, H, W, P, Q, dy, dx);
}

GB_GPU_END
