// Softmax, log-softmax and cross-entropy over the last axis of [rows, cols]: a
// block per row (grid-stride over rows). The row maximum and the sum of
// exp(x - max) are block reductions; kernels/common/softmax.h has the element math.
#pragma once

#include "../common/softmax.h"
#include "block_reduce.cuh"
#include "cuda_backend.h"

GB_GPU_BEGIN

constexpr int kRowThreads = 128;
// Rows up to this many columns are read from global memory once, into dynamic
// shared memory (32 KiB), instead of once per pass (max, sum, output).
constexpr int64_t kCachedCols = 8192;

struct RowStats {
    float max, sum_exp;  // sum_j exp(x_j - max)
};

__device__ inline RowStats row_stats(const float* xr, int64_t cols) {
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, xr[j]);
    m = block_max(m);
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += expf(xr[j] - m);
    return RowStats{m, block_sum(s)};
}

// y = softmax(x) (log_output: log softmax). cross-entropy rows also write
// loss[row] = -log softmax(x)[labels[row]] when `labels` is given. With `cached`,
// each thread copies its columns of the row to shared memory first and reads
// them from there; no barrier is needed, as a thread only reads what it copied.
__global__ void softmax_rows_kernel(int64_t rows, int64_t cols, const float* x, bool log_output,
                                    const int32_t* labels, float* loss, bool cached, float* y) {
    GB_DYNAMIC_SHARED(float, row_cache);
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* xr = x + row * cols;
        if (cached) {
            for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) row_cache[j] = xr[j];
            xr = row_cache;
        }
        float* yr = y + row * cols;
        const RowStats st = row_stats(xr, cols);
        if (log_output) {
            const float log_s = logf(st.sum_exp);
            for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = log_softmax_value(xr[j], st.max, log_s);
        } else {
            const float inv = 1.f / st.sum_exp;
            for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = expf(xr[j] - st.max) * inv;
        }
        if (labels && threadIdx.x == 0) {
            const int64_t label = labels[row];
            const float x_label = cached ? x[row * cols + label] : xr[label];
            loss[row] = -log_softmax_value(x_label, st.max, logf(st.sum_exp));
        }
    }
}

// softmax: dx = y * (dy - sum_j dy_j y_j); log-softmax: dx = dy - exp(y) * sum_j dy_j.
__global__ void softmax_backward_rows_kernel(int64_t rows, int64_t cols, const float* y, const float* dy,
                                             bool log_output, float* dx) {
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* yr = y + row * cols;
        const float* gr = dy + row * cols;
        float* dr = dx + row * cols;
        float s = 0.f;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += log_output ? gr[j] : gr[j] * yr[j];
        s = block_sum(s);
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
            dr[j] = log_output ? gr[j] - expf(yr[j]) * s : yr[j] * (gr[j] - s);
    }
}

__global__ void cross_entropy_backward_kernel(int64_t total, int64_t cols, const float* probs,
                                              const int32_t* labels, const float* dloss, float* dlogits) {
    const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
    for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
        const int64_t r = t / cols;
        dlogits[t] = cross_entropy_grad(probs[t], t % cols == labels[r], dloss[r]);
    }
}

namespace {
void launch_rows(int64_t rows, int64_t cols, const float* x, bool log_output, const int32_t* labels, float* loss,
                 float* y) {
    if (rows <= 0) return;
    const bool cached = cols <= kCachedCols;
    launch(softmax_rows_kernel, dim3(blocks_for(rows, 1)), dim3(kRowThreads),
           cached ? static_cast<size_t>(cols) * sizeof(float) : 0, rows, cols, x, log_output, labels, loss, cached, y);
}
void launch_rows_backward(int64_t rows, int64_t cols, const float* y, const float* dy, bool log_output, float* dx) {
    if (rows <= 0) return;
    launch(softmax_backward_rows_kernel, dim3(blocks_for(rows, 1)), dim3(kRowThreads), 0, rows, cols, y, dy,
           log_output, dx);
}
}  // namespace

void CudaBackend::softmax_forward(int64_t rows, int64_t cols, const float* x, float* y) {
    select_device();
    launch_rows(rows, cols, x, false, nullptr, nullptr, y);
}
void CudaBackend::log_softmax_forward(int64_t rows, int64_t cols, const float* x, float* y) {
    select_device();
    launch_rows(rows, cols, x, true, nullptr, nullptr, y);
}
void CudaBackend::softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx) {
    select_device();
    launch_rows_backward(rows, cols, y, dy, false, dx);
}
void CudaBackend::log_softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx) {
    select_device();
    launch_rows_backward(rows, cols, y, dy, true, dx);
}
void CudaBackend::cross_entropy_forward(int64_t rows, int64_t cols, const float* logits, const int32_t* labels,
                                        float* loss, float* probs) {
    select_device();
    launch_rows(rows, cols, logits, false, labels, loss, probs);
}
void CudaBackend::cross_entropy_backward(int64_t rows, int64_t cols, const float* probs, const int32_t* labels,
                                         const float* dloss, float* dlogits) {
    const int64_t total = rows * cols;
    if (total <= 0) return;
    select_device();
    launch(cross_entropy_backward_kernel, dim3(blocks_for(total)), dim3(kThreads), 0, total, cols, probs, labels,
           dloss, dlogits);
}

GB_GPU_END
