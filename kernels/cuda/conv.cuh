// Convolution (groups = 1) of the CUDA backend, by the algorithm chosen at run
// time: cuDNN (cudnn_conv.cpp, GB_CUDNN builds), im2col + GEMM (im2col of a
// chunk of images, then one strided-batched GEMM by the backend's GEMM choice),
// or the implicit-GEMM kernels. Biases and
// their gradients always use the backend's own bias kernels.
#pragma once

#include "cuda_backend.h"
#include "im2col.cuh"
#include "implicit_conv.cuh"
#if defined(__CUDACC__) && defined(GB_WITH_CUDNN)
#include "cudnn_conv.h"
#endif

GB_GPU_BEGIN

// Images per im2col chunk: as many as fit in kColBudget floats of scratch.
constexpr int64_t kColBudget = int64_t{1} << 24;  // 64 MiB
inline int64_t col_chunk(const Conv2dGeom& g) {
    const int64_t per_image = g.C * g.R * g.S * g.P * g.Q;
    const int64_t n = kColBudget / (per_image > 0 ? per_image : 1);
    return n < 1 ? 1 : (n > g.N ? g.N : n);
}

// y[n] = w [K, CRS] * col[n] [CRS, PQ], a strided-batched GEMM per chunk of images.
void CudaBackend::conv_im2col_forward(const Conv2dGeom& g, const float* x, const float* w, float* y) {
    const int64_t CRS = g.C * g.R * g.S, PQ = g.P * g.Q, chunk = col_chunk(g);
    const bool direct = g.col_is_input();
    DeviceBuffer<float> col(direct ? 0 : chunk * CRS * PQ, device_);
    for (int64_t n0 = 0; n0 < g.N; n0 += chunk) {
        const int64_t images = n0 + chunk <= g.N ? chunk : g.N - n0;
        const float* xn = x + n0 * g.C * g.H * g.W;
        if (!direct) im2col(g, images, xn, col.get());
        gemm_batched(false, false, g.K, PQ, CRS, w, CRS, 0, direct ? xn : col.get(), PQ, CRS * PQ, y + n0 * g.K * PQ,
                     PQ, g.K * PQ, images);
    }
}

// dcol[n] = w^T [CRS, K] * dy[n] [K, PQ], then col2im into dx[n].
void CudaBackend::conv_im2col_backward_data(const Conv2dGeom& g, const float* dy, const float* w, float* dx) {
    const int64_t CRS = g.C * g.R * g.S, PQ = g.P * g.Q, chunk = col_chunk(g);
    const bool direct = g.col_is_input();
    DeviceBuffer<float> col(direct ? 0 : chunk * CRS * PQ, device_);
    for (int64_t n0 = 0; n0 < g.N; n0 += chunk) {
        const int64_t images = n0 + chunk <= g.N ? chunk : g.N - n0;
        float* dxn = dx + n0 * g.C * g.H * g.W;
        gemm_batched(true, false, CRS, PQ, g.K, w, CRS, 0, dy + n0 * g.K * PQ, PQ, g.K * PQ, direct ? dxn : col.get(),
                     PQ, CRS * PQ, images);
        if (!direct) col2im(g, images, col.get(), dxn);
    }
}

// dw = sum over n of dy[n] [K, PQ] * col[n]^T, accumulated image by image.
void CudaBackend::conv_im2col_backward_weight(const Conv2dGeom& g, const float* x, const float* dy, float* dw) {
    const int64_t CRS = g.C * g.R * g.S, PQ = g.P * g.Q, chunk = col_chunk(g);
    const bool direct = g.col_is_input();
    DeviceBuffer<float> col(direct ? 0 : chunk * CRS * PQ, device_);
    for (int64_t n0 = 0; n0 < g.N; n0 += chunk) {
        const int64_t images = n0 + chunk <= g.N ? chunk : g.N - n0;
        const float* xn = x + n0 * g.C * g.H * g.W;
        if (!direct) im2col(g, images, xn, col.get());
        for (int64_t i = 0; i < images; ++i) {
            const float* coln = (direct ? xn : col.get()) + i * CRS * PQ;
            gemm(false, true, g.K, CRS, PQ, 1.f, dy + (n0 + i) * g.K * PQ, PQ, coln, PQ, n0 + i == 0 ? 0.f : 1.f, dw,
                 CRS);
        }
    }
}

void CudaBackend::conv2d_forward(const Conv2dGeom& g, const float* x, const float* w, const float* bias, float* y) {
    if (g.y_numel() == 0) return;
    select_device();
    switch (conv_algo_) {
#if defined(__CUDACC__) && defined(GB_WITH_CUDNN)
        case ConvAlgo::Cudnn: cudnn_conv2d_forward(device_, g, x, w, y); break;
#else
        case ConvAlgo::Cudnn:
#endif
        case ConvAlgo::Im2col: conv_im2col_forward(g, x, w, y); break;
        case ConvAlgo::Implicit: implicit_conv2d_forward(g, x, w, y); break;
    }
    if (bias) bias_add(g.N, g.K, g.P * g.Q, bias, y);
}

void CudaBackend::conv2d_backward_data(const Conv2dGeom& g, const float* dy, const float* w, float* dx) {
    if (g.x_numel() == 0) return;
    select_device();
    switch (conv_algo_) {
#if defined(__CUDACC__) && defined(GB_WITH_CUDNN)
        case ConvAlgo::Cudnn: cudnn_conv2d_backward_data(device_, g, dy, w, dx); break;
#else
        case ConvAlgo::Cudnn:
#endif
        case ConvAlgo::Im2col: conv_im2col_backward_data(g, dy, w, dx); break;
        case ConvAlgo::Implicit: implicit_conv2d_backward_data(g, dy, w, dx); break;
    }
}

void CudaBackend::conv2d_backward_weight(const Conv2dGeom& g, const float* x, const float* dy, float* dw,
                                         float* dbias) {
    select_device();
    if (g.N == 0 || g.P * g.Q == 0) {  // no output pixels: the gradients are zero
        fill(g.w_numel(), 0.f, dw);
        if (dbias) fill(g.K, 0.f, dbias);
        return;
    }
    switch (conv_algo_) {
#if defined(__CUDACC__) && defined(GB_WITH_CUDNN)
        case ConvAlgo::Cudnn: cudnn_conv2d_backward_weight(device_, g, x, dy, dw); break;
#else
        case ConvAlgo::Cudnn:
#endif
        case ConvAlgo::Im2col: conv_im2col_backward_weight(g, x, dy, dw); break;
        case ConvAlgo::Implicit: implicit_conv2d_backward_weight(g, x, dy, dw, device_); break;
    }
    if (dbias) bias_grad(g.N, g.K, g.P * g.Q, dy, dbias);
}

GB_GPU_END
