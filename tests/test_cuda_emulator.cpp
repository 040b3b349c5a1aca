// The CUDA emulator itself (kernels/cuda/emulator/): indices, barriers, shared
// memory, warp shuffles and votes against CUDA's documented semantics, atomics
// under real concurrency, and the loud refusals of its contract (docs/cuda.md).
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "kernels/cuda/emulator/cuda_emulation.h"

using gb::cuda_emu::launch;

namespace {

constexpr unsigned kFull = 0xffffffffu;

__global__ void write_indices(unsigned* out) {
    const unsigned block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    const unsigned thread = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
    const unsigned per_block = blockDim.x * blockDim.y * blockDim.z;
    atomicAdd(&out[block * per_block + thread], 1u + block * 1000u + thread);
}

// Each round, thread t reads what thread t+1 wrote before the barrier.
__global__ void rotate_rounds(int rounds, int* out) {
    __shared__ int s[256];
    const int t = threadIdx.x, n = blockDim.x;
    int v = t;
    for (int r = 0; r < rounds; ++r) {
        s[t] = v;
        __syncthreads();
        v = s[(t + 1) % n];
        __syncthreads();
    }
    out[blockIdx.x * n + t] = v;
}

__global__ void dynamic_reverse(const float* in, float* out) {
    GB_DYNAMIC_SHARED(float, buf);
    const int t = threadIdx.x, n = blockDim.x;
    buf[t] = in[blockIdx.x * n + t];
    __syncthreads();
    out[blockIdx.x * n + t] = buf[n - 1 - t];
}

struct ShuffleOut {
    int idx, down, up, xr, width8, sum;
};

__global__ void shuffles(ShuffleOut* out) {
    const int lane = threadIdx.x % 32;
    const int v = static_cast<int>(threadIdx.x) * 10;
    ShuffleOut o;
    o.idx = __shfl_sync(kFull, v, 3);
    o.down = __shfl_down_sync(kFull, v, 5);
    o.up = __shfl_up_sync(kFull, v, 2);
    o.xr = __shfl_xor_sync(kFull, v, 1);
    o.width8 = __shfl_sync(kFull, v, 1, 8);
    int s = lane;
    for (int offset = 16; offset > 0; offset >>= 1) s += __shfl_xor_sync(kFull, s, offset);
    o.sum = s;
    out[threadIdx.x] = o;
}

__global__ void votes(unsigned* ballot, int* any, int* all) {
    const int lane = threadIdx.x % 32;
    ballot[threadIdx.x] = __ballot_sync(kFull, lane % 3 == 0);
    any[threadIdx.x] = __any_sync(kFull, lane == 31);
    all[threadIdx.x] = __all_sync(kFull, lane >= 0) + 2 * __all_sync(kFull, lane > 0);
}

__device__ float atomic_max_float(float* address, float value) {
    int* bits = reinterpret_cast<int*>(address);
    int old = atomicAdd(bits, 0);  // an atomic read
    while (__int_as_float(old) < value) {
        const int seen = atomicCAS(bits, old, __float_as_int(value));
        if (seen == old) break;
        old = seen;
    }
    return __int_as_float(old);
}

__global__ void atomics(float* fsum, int* isum, int* imax, float* fmax, int* imin, unsigned* exch) {
    const int t = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    atomicAdd(fsum, 1.f);
    atomicAdd(isum, t);
    atomicMax(imax, (t * 7919) % 1024);
    atomic_max_float(fmax, static_cast<float>((t * 31) % 1000) * 0.5f);
    atomicMin(imin, 5000 - t);
    const unsigned old = atomicExch(exch, static_cast<unsigned>(t));  // each value is handed on exactly once
    atomicAdd(exch + 1 + old, 1u);
}

// 8-byte values shuffle whole; __syncwarp orders shared-memory writes within the warp.
__global__ void wide_shuffle_and_syncwarp(double* out, int* seen) {
    __shared__ int s[64];
    const int lane = threadIdx.x % 32, base = threadIdx.x - lane;
    out[threadIdx.x] = __shfl_xor_sync(kFull, 1e10 + lane, 31);
    s[threadIdx.x] = lane;
    __syncwarp();
    seen[threadIdx.x] = s[base + 31 - lane];
}

__global__ void partial_mask_shuffle(int* out) { out[threadIdx.x] = __shfl_sync(0x0000ffffu, 1, 0); }
__global__ void full_mask_shuffle(int* out) { out[threadIdx.x] = __shfl_sync(kFull, 1, 0); }
__global__ void early_return_then_sync(int* out) {
    if (threadIdx.x == 0) return;
    __syncthreads();
    out[threadIdx.x] = 1;
}
__global__ void lanes_at_different_shuffles(int* out) {
    if (threadIdx.x % 2) out[threadIdx.x] = __shfl_xor_sync(kFull, 1, 1);
    else out[threadIdx.x] = __shfl_down_sync(kFull, 2, 1);
}
__global__ void nothing(int*) {}
__global__ void launches_a_kernel(int* out) { launch(nothing, dim3(1), dim3(1), 0, out); }

}  // namespace

TEST_CASE("every thread of every block runs once with its own indices") {
    const dim3 grid(2, 3, 2), block(4, 2, 3);
    std::vector<unsigned> out(12 * 24, 0);
    launch(write_indices, grid, block, 0, out.data());
    for (unsigned b = 0; b < 12; ++b)
        for (unsigned t = 0; t < 24; ++t) CHECK(out[b * 24 + t] == 1u + b * 1000u + t);
}

TEST_CASE("__syncthreads separates phases; static shared memory is one copy per block") {
    for (int threads : {32, 100, 256}) {
        std::vector<int> out(3 * threads, -1);
        launch(rotate_rounds, dim3(3), dim3(threads), 0, 5, out.data());
        for (int b = 0; b < 3; ++b)
            for (int t = 0; t < threads; ++t) CHECK(out[b * threads + t] == (t + 5) % threads);
    }
}

TEST_CASE("dynamic shared memory holds the block's data") {
    const int n = 96;
    std::vector<float> in(2 * n), out(2 * n);
    for (int i = 0; i < 2 * n; ++i) in[i] = static_cast<float>(i);
    launch(dynamic_reverse, dim3(2), dim3(n), n * sizeof(float), in.data(), out.data());
    for (int b = 0; b < 2; ++b)
        for (int t = 0; t < n; ++t) CHECK(out[b * n + t] == in[b * n + n - 1 - t]);
}

TEST_CASE("warp shuffles follow CUDA's lane rules") {
    std::vector<ShuffleOut> out(64);
    launch(shuffles, dim3(1), dim3(64), 0, out.data());
    for (int t = 0; t < 64; ++t) {
        const int lane = t % 32, warp0 = t - lane;
        CAPTURE(t);
        CHECK(out[t].idx == (warp0 + 3) * 10);
        CHECK(out[t].down == (lane + 5 < 32 ? t + 5 : t) * 10);
        CHECK(out[t].up == (lane >= 2 ? t - 2 : t) * 10);
        CHECK(out[t].xr == (t ^ 1) * 10);
        CHECK(out[t].width8 == (warp0 + (lane / 8) * 8 + 1) * 10);
        CHECK(out[t].sum == 31 * 32 / 2);
    }
}

TEST_CASE("warp votes") {
    std::vector<unsigned> ballot(64);
    std::vector<int> any(64), all(64);
    launch(votes, dim3(1), dim3(64), 0, ballot.data(), any.data(), all.data());
    unsigned want = 0;
    for (int l = 0; l < 32; l += 3) want |= 1u << l;
    for (int t = 0; t < 64; ++t) {
        CHECK(ballot[t] == want);
        CHECK(any[t] == 1);
        CHECK(all[t] == 1);
    }
}

TEST_CASE("atomics are atomic across the threads of a block") {
    float fsum = 0.f, fmax = -1.f;
    int isum = 0, imax = -1, imin = 1 << 30;
    std::vector<unsigned> exch(1026, 0);
    exch[0] = 1024;  // the first exchange hands on 1024
    launch(atomics, dim3(4), dim3(256), 0, &fsum, &isum, &imax, &fmax, &imin, exch.data());
    CHECK(fsum == 1024.f);
    CHECK(isum == 1023 * 1024 / 2);
    CHECK(imax == 1023);
    CHECK(fmax == 999 * 0.5f);
    CHECK(imin == 5000 - 1023);
    // Of the values 0..1024, the one left in place was never handed on; every other exactly once.
    for (unsigned v = 0; v <= 1024; ++v) CHECK(exch[1 + v] == (v == exch[0] ? 0u : 1u));
}

TEST_CASE("8-byte shuffles and __syncwarp") {
    std::vector<double> out(64);
    std::vector<int> seen(64);
    launch(wide_shuffle_and_syncwarp, dim3(1), dim3(64), 0, out.data(), seen.data());
    for (int t = 0; t < 64; ++t) {
        CHECK(out[t] == 1e10 + ((t % 32) ^ 31));
        CHECK(seen[t] == 31 - t % 32);
    }
}

TEST_CASE("the emulator refuses what CUDA would not run or it cannot emulate") {
    std::vector<int> out(2048);
    CHECK_THROWS_WITH_AS(launch(nothing, dim3(1), dim3(1025), 0, out.data()),
                         doctest::Contains("a block has 1 to 1024 threads"), gb::Error);
    CHECK_THROWS_WITH_AS(launch(nothing, dim3(1, 70000), dim3(1), 0, out.data()), doctest::Contains("out of range"),
                         gb::Error);
    CHECK_THROWS_WITH_AS(launch(dynamic_reverse, dim3(1), dim3(32), 48 * 1024 + 4, nullptr, nullptr),
                         doctest::Contains("dynamic shared memory"), gb::Error);
    CHECK_THROWS_WITH_AS(launch(partial_mask_shuffle, dim3(1), dim3(32), 0, out.data()),
                         doctest::Contains("full-warp masks"), gb::Error);
    CHECK_THROWS_WITH_AS(launch(full_mask_shuffle, dim3(1), dim3(48), 0, out.data()),
                         doctest::Contains("multiple of 32"), gb::Error);
    CHECK_THROWS_WITH_AS(launch(early_return_then_sync, dim3(2), dim3(64), 0, out.data()),
                         doctest::Contains("reached different barriers"), gb::Error);
    CHECK_THROWS_WITH_AS(launch(lanes_at_different_shuffles, dim3(1), dim3(32), 0, out.data()),
                         doctest::Contains("reached different barriers"), gb::Error);
    CHECK_THROWS_WITH_AS(launch(launches_a_kernel, dim3(1), dim3(1), 0, out.data()),
                         doctest::Contains("dynamic parallelism"), gb::Error);
    CHECK_THROWS_AS(__syncthreads(), gb::Error);  // outside a kernel
    // A launch after the refused ones still works.
    std::fill(out.begin(), out.end(), 0);
    launch(full_mask_shuffle, dim3(2), dim3(64), 0, out.data());
    CHECK(out[63] == 1);
}
