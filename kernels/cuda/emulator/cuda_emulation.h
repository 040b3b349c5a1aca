// The CUDA emulator (library glassbox_cuda_emulator): lets the host compiler
// build and run the hand-written kernels of kernels/cuda/*.cuh, so every test
// run checks them against the CPU backend without a GPU. kernels/cuda/compat.cuh
// includes it whenever nvcc is not the compiler. It is never part of glassbox
// itself: it backs the emulated CUDA device (glassbox_cuda_emulated, with the
// emulated runtime of core/cuda_runtime_emulated.cpp for "device" memory).
//
// Execution model: a launch runs the grid's blocks one after another (x fastest);
// each thread of a block is a real std::thread (from a pool kept between
// launches), so races, barriers, shuffles and atomics behave as concurrent
// code does. __syncthreads is a barrier over the
// block; warp shuffles and votes exchange values through a per-warp barrier.
// `__shared__` becomes a function-local `static`, which is exactly one copy per
// block because blocks run in turn and launches are serialised.
//
// The contract (what kernels may use) is docs/cuda.md. Anything this header does
// not define fails to compile; misuse that only shows at run time (block size
// over 1024, partial shuffle masks, divergent __syncthreads, too much dynamic
// shared memory ...) raises gb::Error from the launch.
#pragma once

#include <math.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <source_location>
#include <tuple>
#include <type_traits>

#include "../../../core/error.h"

#define GB_CUDA_EMULATION 1

namespace gb::cuda_emu {
// The call site of a barrier or a warp operation. std::source_location where the
// standard library offers it; clang 14 with libstdc++ 12 does not (its
// <source_location> needs a builtin of clang 15), so there the same two facts
// come from __builtin_FILE / __builtin_LINE, which g++ and clang both have.
#if defined(__cpp_lib_source_location)
using SourceLocation = std::source_location;
#else
struct SourceLocation {
    static constexpr SourceLocation current(const char* file = __builtin_FILE(), unsigned line = __builtin_LINE()) {
        return SourceLocation{file, line};
    }
    constexpr const char* file_name() const { return file_; }
    constexpr unsigned line() const { return line_; }
    const char* file_ = "";
    unsigned line_ = 0;
};
#endif
}  // namespace gb::cuda_emu

// ---- built-in types and variables -------------------------------------------------------------
struct uint3 {
    unsigned x = 0, y = 0, z = 0;
};
struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) float4 {
    float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;
constexpr int warpSize = 32;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static
#define GB_DYNAMIC_SHARED(type, name) type* name = ::gb::cuda_emu::dynamic_shared<type>()

namespace gb::cuda_emu {

constexpr size_t kMaxDynamicShared = 48 * 1024;  // the default limit without opting in
constexpr unsigned kMaxBlockThreads = 1024;

// The launch machinery (cuda_emulation.cpp).
void run_grid(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()>& body);
void syncthreads(::gb::cuda_emu::SourceLocation at);
void* dynamic_shared_bytes();
// Each lane offers `value` and receives src_lane's.
uint64_t warp_exchange(::gb::cuda_emu::SourceLocation at, unsigned mask, uint64_t value, int src_lane);
uint32_t warp_ballot(::gb::cuda_emu::SourceLocation at, unsigned mask, bool predicate);
int lane_id();

// Runs `kernel(args...)` over `grid` x `block` threads, converting the arguments
// to the kernel's parameter types first (by value, as a real launch does).
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, Args&&... args) {
    static_assert(sizeof...(Params) == sizeof...(Args), "kernel launched with the wrong number of arguments");
    std::tuple<std::decay_t<Params>...> params(std::forward<Args>(args)...);
    run_grid(grid, block, shared_bytes, [&] { std::apply(kernel, params); });
}

template <typename T>
T* dynamic_shared() {
    return static_cast<T*>(dynamic_shared_bytes());
}

template <typename T>
uint64_t to_bits(T v) {
    static_assert(std::is_trivially_copyable_v<T> && (sizeof(T) == 4 || sizeof(T) == 8),
                  "warp shuffles take 4- or 8-byte values");
    uint64_t b = 0;
    std::memcpy(&b, &v, sizeof(T));
    return b;
}
template <typename T>
T from_bits(uint64_t b) {
    T v;
    std::memcpy(&v, &b, sizeof(T));
    return v;
}

// Source lane of each shuffle flavour within segments of `width` lanes (CUDA's rules).
int shfl_source(int lane, int src, int width);
int shfl_down_source(int lane, unsigned delta, int width);
int shfl_up_source(int lane, unsigned delta, int width);
int shfl_xor_source(int lane, int lane_mask, int width);

}  // namespace gb::cuda_emu

// ---- barriers, warp shuffles and votes --------------------------------------------------------
// Each call site is told apart by its source line, so threads of one block (or
// lanes of one warp) that reach different barriers are reported, not deadlocked.
// Shuffles and votes need a block size that is a multiple of 32 and a mask
// naming all 32 lanes (0xffffffff).
inline void __syncthreads(::gb::cuda_emu::SourceLocation at = ::gb::cuda_emu::SourceLocation::current()) {
    ::gb::cuda_emu::syncthreads(at);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, ::gb::cuda_emu::SourceLocation at = ::gb::cuda_emu::SourceLocation::current()) {
    ::gb::cuda_emu::warp_ballot(at, mask, true);
}

template <typename T>
T gb_emu_shuffle(::gb::cuda_emu::SourceLocation at, unsigned mask, T v, int src) {
    using namespace ::gb::cuda_emu;
    return from_bits<T>(warp_exchange(at, mask, to_bits(v), src));
}
template <typename T>
T __shfl_sync(unsigned mask, T v, int src_lane, int width = warpSize,
              ::gb::cuda_emu::SourceLocation at = ::gb::cuda_emu::SourceLocation::current()) {
    return gb_emu_shuffle(at, mask, v, ::gb::cuda_emu::shfl_source(::gb::cuda_emu::lane_id(), src_lane, width));
}
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = warpSize,
                   ::gb::cuda_emu::SourceLocation at = ::gb::cuda_emu::SourceLocation::current()) {
    return gb_emu_shuffle(at, mask, v, ::gb::cuda_emu::shfl_down_source(::gb::cuda_emu::lane_id(), delta, width));
}
template <typename T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = warpSize,
                 ::gb::cuda_emu::SourceLocation at = ::gb::cuda_emu::SourceLocation::current()) {
    return gb_emu_shuffle(at, mask, v, ::gb::cuda_emu::shfl_up_source(::gb::cuda_emu::lane_id(), delta, width));
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize,
                  ::gb::cuda_emu::SourceLocation at = ::gb::cuda_emu::SourceLocation::current()) {
    return gb_emu_shuffle(at, mask, v, ::gb::cuda_emu::shfl_xor_source(::gb::cuda_emu::lane_id(), lane_mask, width));
}
inline unsigned __ballot_sync(unsigned mask, int predicate, ::gb::cuda_emu::SourceLocation at = ::gb::cuda_emu::SourceLocation::current()) {
    return ::gb::cuda_emu::warp_ballot(at, mask, predicate != 0);
}
inline int __any_sync(unsigned mask, int predicate, ::gb::cuda_emu::SourceLocation at = ::gb::cuda_emu::SourceLocation::current()) {
    return ::gb::cuda_emu::warp_ballot(at, mask, predicate != 0) != 0u;
}
inline int __all_sync(unsigned mask, int predicate, ::gb::cuda_emu::SourceLocation at = ::gb::cuda_emu::SourceLocation::current()) {
    return ::gb::cuda_emu::warp_ballot(at, mask, predicate != 0) == 0xffffffffu;
}

// ---- atomics (std::atomic_ref on the element) -------------------------------------------------
template <typename T>
T atomicAdd(T* address, T value) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, int> || std::is_same_v<T, unsigned> ||
                      std::is_same_v<T, unsigned long long>,
                  "atomicAdd: float, int, unsigned or unsigned long long");
    return std::atomic_ref<T>(*address).fetch_add(value);
}
template <typename T>
T atomicCAS(T* address, T compare, T value) {
    static_assert(std::is_same_v<T, int> || std::is_same_v<T, unsigned> || std::is_same_v<T, unsigned long long>,
                  "atomicCAS: int, unsigned or unsigned long long");
    std::atomic_ref<T>(*address).compare_exchange_strong(compare, value);
    return compare;  // the old value either way
}
template <typename T>
T atomicExch(T* address, T value) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, int> || std::is_same_v<T, unsigned>,
                  "atomicExch: float, int or unsigned");
    return std::atomic_ref<T>(*address).exchange(value);
}
template <typename T>
T atomicMax(T* address, T value) {
    static_assert(std::is_same_v<T, int> || std::is_same_v<T, unsigned>, "atomicMax: int or unsigned");
    std::atomic_ref<T> ref(*address);
    T old = ref.load();
    while (old < value && !ref.compare_exchange_weak(old, value)) {
    }
    return old;
}
template <typename T>
T atomicMin(T* address, T value) {
    static_assert(std::is_same_v<T, int> || std::is_same_v<T, unsigned>, "atomicMin: int or unsigned");
    std::atomic_ref<T> ref(*address);
    T old = ref.load();
    while (old > value && !ref.compare_exchange_weak(old, value)) {
    }
    return old;
}

// ---- bit reinterpretation and read-only loads --------------------------------------------------
inline int __float_as_int(float f) { return ::gb::cuda_emu::from_bits<int>(::gb::cuda_emu::to_bits(f)); }
inline float __int_as_float(int i) { return ::gb::cuda_emu::from_bits<float>(::gb::cuda_emu::to_bits(i)); }
template <typename T>
T __ldg(const T* p) {
    return *p;
}

// ---- cuBLAS: the entry points the backend calls --------------------------------------------------
// cublasSgemm (and its strided-batched form) with cuBLAS's column-major semantics,
// computed by a plain loop on the host, so the backend's row-major-by-swapping
// calls are checked without a GPU.
enum cublasStatus_t { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7 };
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
struct gb_emu_cublas_context {};
using cublasHandle_t = gb_emu_cublas_context*;
cublasStatus_t cublasCreate(cublasHandle_t* handle);
cublasStatus_t cublasDestroy(cublasHandle_t handle);
const char* cublasGetStatusString(cublasStatus_t status);
cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                           const float* beta, float* C, int ldc);
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const float* alpha, const float* A, int lda,
                                         long long stride_a, const float* B, int ldb, long long stride_b,
                                         const float* beta, float* C, int ldc, long long stride_c, int batch);
