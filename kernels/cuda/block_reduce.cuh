// Reductions across a warp (butterfly shuffles) and across a block (one partial
// per warp in shared memory, then one warp reduces them), in the manner of
// llm.c's blockReduce. Blocks are one-dimensional with a multiple of 32 threads;
// every thread of the block must call, and every thread receives the result.
#pragma once

#include "compat.cuh"

GB_GPU_BEGIN

struct SumOp {
    __device__ float operator()(float a, float b) const { return a + b; }
    static constexpr float identity = 0.f;
};
struct MaxOp {
    __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
    static constexpr float identity = -INFINITY;
};

template <typename Op>
__device__ float warp_reduce(float v, Op op) {
    for (int offset = 16; offset > 0; offset >>= 1) v = op(v, __shfl_xor_sync(kFullMask, v, offset));
    return v;
}

template <typename Op>
__device__ float block_reduce(float v, Op op) {
    __shared__ float partial[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_reduce(v, op);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = warp_reduce(lane < warps ? partial[lane] : Op::identity, op);
    __syncthreads();  // `partial` is free again for the next call
    return v;
}

__device__ inline float block_sum(float v) { return block_reduce(v, SumOp{}); }
__device__ inline float block_max(float v) { return block_reduce(v, MaxOp{}); }

GB_GPU_END
