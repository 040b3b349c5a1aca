// Reductions over the middle axis of [outer, reduce, inner] (sum_dim), its
// backward (broadcast_dim) and the per-channel bias gradient. Sums accumulate
// in float: per thread over a strided share, then across the block.
#pragma once

#include "block_reduce.cuh"
#include "cuda_backend.h"

GB_GPU_BEGIN

constexpr int kReduceThreads = 256;
constexpr int64_t kFewOutputs = 4096;  // below this many outputs, a block per output
constexpr int64_t kSplitChunk = 32768;  // reduce length per block when a few long sums are split
constexpr int64_t kSplitBlocks = 1024;  // split until about this many blocks are busy

// out[t] for t = o * inner + i: a block per output, threads stride over `reduce`.
__global__ void sum_dim_block_kernel(int64_t outer, int64_t reduce, int64_t inner, const float* x, float* out) {
    for (int64_t t = blockIdx.x; t < outer * inner; t += gridDim.x) {
        const float* base = x + (t / inner) * reduce * inner + t % inner;
        float s = 0.f;
        for (int64_t r = threadIdx.x; r < reduce; r += blockDim.x) s += base[r * inner];
        s = block_sum(s);
        if (threadIdx.x == 0) out[t] = s;
    }
}

// parts[t * splits + s] = the sum of out[t]'s terms r in [s * chunk, (s + 1) * chunk): a block per
// (output, split), for a few outputs over a long `reduce` (one block per output left most SMs idle).
__global__ void sum_dim_split_kernel(int64_t outer, int64_t reduce, int64_t inner, int64_t splits, int64_t chunk,
                                     const float* x, float* parts) {
    for (int64_t b = blockIdx.x; b < outer * inner * splits; b += gridDim.x) {
        const int64_t t = b / splits, s = b % splits;
        const float* base = x + (t / inner) * reduce * inner + t % inner;
        const int64_t end = (s + 1) * chunk < reduce ? (s + 1) * chunk : reduce;
        float sum = 0.f;
        for (int64_t r = s * chunk + threadIdx.x; r < end; r += blockDim.x) sum += base[r * inner];
        sum = block_sum(sum);
        if (threadIdx.x == 0) parts[b] = sum;
    }
}

// out[t] = the sum of parts[t * splits .. + splits), in a fixed order (results do not depend on timing).
__global__ void sum_parts_kernel(int64_t outputs, int64_t splits, const float* parts, float* out) {
    for (int64_t t = blockIdx.x; t < outputs; t += gridDim.x) {
        float sum = 0.f;
        for (int64_t s = threadIdx.x; s < splits; s += blockDim.x) sum += parts[t * splits + s];
        sum = block_sum(sum);
        if (threadIdx.x == 0) out[t] = sum;
    }
}

// A thread per output, reading along `reduce` (coalesced across inner).
__global__ void sum_dim_column_kernel(int64_t outer, int64_t reduce, int64_t inner, const float* x, float* out) {
    const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
    for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < outer * inner; t += stride) {
        const float* base = x + (t / inner) * reduce * inner + t % inner;
        float s = 0.f;
        for (int64_t r = 0; r < reduce; ++r) s += base[r * inner];
        out[t] = s;
    }
}

// out[o, r, i] = alpha * g[o, i].
__global__ void broadcast_dim_kernel(int64_t total, int64_t reduce, int64_t inner, float alpha, const float* g,
                                     float* out) {
    const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
    for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride)
        out[t] = alpha * g[(t / (reduce * inner)) * inner + t % inner];
}

// dbias[c] = sum over o, i of dy[o, c, i]: a block per channel.
__global__ void bias_grad_kernel(int64_t outer, int64_t channels, int64_t inner, const float* dy, float* dbias) {
    for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
        float s = 0.f;
        for (int64_t j = threadIdx.x; j < outer * inner; j += blockDim.x)
            s += dy[((j / inner) * channels + c) * inner + j % inner];
        s = block_sum(s);
        if (threadIdx.x == 0) dbias[c] = s;
    }
}

void CudaBackend::sum_dim(int64_t outer, int64_t reduce, int64_t inner, const float* x, float* out) {
    const int64_t outputs = outer * inner;
    if (outputs <= 0) return;
    select_device();
    if (outputs < kSplitBlocks && reduce >= 2 * kSplitChunk) {
        const int64_t by_length = (reduce + kSplitChunk - 1) / kSplitChunk;
        const int64_t by_blocks = (kSplitBlocks + outputs - 1) / outputs;
        const int64_t splits = by_length < by_blocks ? by_length : by_blocks;
        const int64_t chunk = (reduce + splits - 1) / splits;
        DeviceBuffer<float> parts(outputs * splits, device_);
        launch(sum_dim_split_kernel, dim3(blocks_for(outputs * splits, 1)), dim3(kReduceThreads), 0, outer, reduce,
               inner, splits, chunk, x, parts.get());
        launch(sum_parts_kernel, dim3(blocks_for(outputs, 1)), dim3(kReduceThreads), 0, outputs, splits,
               static_cast<const float*>(parts.get()), out);
    } else if (inner == 1 || outputs <= kFewOutputs)
        launch(sum_dim_block_kernel, dim3(blocks_for(outputs, 1)), dim3(kReduceThreads), 0, outer, reduce, inner, x,
               out);
    else
        launch(sum_dim_column_kernel, dim3(blocks_for(outputs)), dim3(kThreads), 0, outer, reduce, inner, x, out);
}

void CudaBackend::broadcast_dim(int64_t outer, int64_t reduce, int64_t inner, float alpha, const float* g,
                                float* out) {
    const int64_t total = outer * reduce * inner;
    if (total <= 0) return;
    select_device();
    launch(broadcast_dim_kernel, dim3(blocks_for(total)), dim3(kThreads), 0, total, reduce, inner, alpha, g, out);
}

void CudaBackend::bias_grad(int64_t outer, int64_t channels, int64_t inner, const float* dy, float* dbias) {
    if (channels <= 0) return;
    select_device();
    launch(bias_grad_kernel, dim3(blocks_for(channels, 1)), dim3(kReduceThreads), 0, outer, channels, inner, dy,
           dbias);
}

GB_GPU_END
