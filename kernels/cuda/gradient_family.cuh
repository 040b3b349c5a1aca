// Primitives of the gradient family and the model-level methods (the CPU's are
// kernels/cpu/gradient_family.cpp): per-row minimum and maximum, a block per
// row; Gaussian noise from the shared Philox draw, a thread per element; the
// wrap-around shift of planes, a thread per output element.
#pragma once

#include "../../core/philox.h"
#include "block_reduce.cuh"
#include "cuda_backend.h"
#include "elementwise.cuh"

GB_GPU_BEGIN

constexpr int kMinMaxThreads = 256;

struct MinOp {
    __device__ float operator()(float a, float b) const { return fminf(a, b); }
    static constexpr float identity = INFINITY;
};

__global__ void row_min_max_kernel(int64_t rows, int64_t cols, const float* x, float* mins, float* maxs) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* row = x + r * cols;
        float lo = INFINITY, hi = -INFINITY;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
            lo = fminf(lo, row[j]);
            hi = fmaxf(hi, row[j]);
        }
        lo = block_reduce(lo, MinOp{});
        hi = block_reduce(hi, MaxOp{});
        if (threadIdx.x == 0) {
            mins[r] = lo;
            maxs[r] = hi;
        }
    }
}

struct NormalNoiseOp {
    int64_t cols;
    uint64_t seed, offset;
    const float* stddev;
    float* x;
    __device__ void operator()(int64_t i) const {
        x[i] += philox_normal_at(seed, offset, static_cast<uint64_t>(i), 0.f, stddev[i / cols]);
    }
};

// out[p, y, x] = in[p, (y - dy) mod H, (x - dx) mod W] with dy, dx already in [0, H) x [0, W).
struct Roll2dOp {
    int64_t H, W, dy, dx;
    const float* in;
    float* out;
    __device__ void operator()(int64_t i) const {
        const int64_t x = i % W, y = (i / W) % H, p = i / (H * W);
        out[i] = in[(p * H + (y + H - dy) % H) * W + (x + W - dx) % W];
    }
};

void CudaBackend::row_min_max(int64_t rows, int64_t cols, const float* x, float* mins, float* maxs) {
    if (rows <= 0) return;
    select_device();
    launch(row_min_max_kernel, dim3(blocks_for(rows, 1)), dim3(kMinMaxThreads), 0, rows, cols, x, mins, maxs);
}

void CudaBackend::add_normal_noise(int64_t rows, int64_t cols, uint64_t seed, uint64_t offset, const float* stddev,
                                   float* x) {
    select_device();
    for_each(rows * cols, NormalNoiseOp{cols, seed, offset, stddev, x});
}

void CudaBackend::roll2d(int64_t planes, int64_t H, int64_t W, int64_t dy, int64_t dx, const float* x, float* out) {
    select_device();
    for_each(planes * H * W, Roll2dOp{H, W, ((dy % H) + H) % H, ((dx % W) + W) % W, x, out});
}

GB_GPU_END
