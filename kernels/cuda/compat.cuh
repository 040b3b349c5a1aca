// Portability layer of the hand-written CUDA kernels (kernels/cuda/*.cuh).
// Under nvcc it is plain CUDA: <<<>>> launches and cuBLAS. Under the host
// compiler it includes the CUDA emulator (kernels/cuda/emulator/), which
// supplies the same names, so every kernel and launcher also runs in ctest
// without a GPU (the emulated CUDA device, docs/cuda.md). Scratch memory comes
// from core/cuda_runtime in both: the caching allocator on a GPU, host memory
// on the emulated device. Kernels may use only what docs/cuda.md lists.
//
// The kernels live in namespace gb::kernels::gpu, inside an inline namespace
// that differs between the two builds (`device` / `emulated`): the same class
// names with different code never share a mangled name, so a mix-up of the two
// libraries (glassbox, glassbox_cuda_emulated; a program links one) fails to
// link instead of breaking the one-definition rule silently.
#pragma once

#include <math.h>

#include <cstddef>
#include <cstdint>

#include "../../core/cuda_runtime.h"
#include "../../core/error.h"
#include "../../core/hd.h"

#if defined(__CUDACC__)
#include <cublas_v2.h>
#include <cuda_runtime.h>

#define GB_GPU_ABI device
#define GB_DYNAMIC_SHARED(type, name)                                  \
    extern __shared__ __align__(16) unsigned char gb_dynamic_shared_[]; \
    type* name = reinterpret_cast<type*>(gb_dynamic_shared_)
#else
#include "emulator/cuda_emulation.h"
#define GB_GPU_ABI emulated
#endif

#define GB_GPU_BEGIN namespace gb::kernels::gpu { inline namespace GB_GPU_ABI {
#define GB_GPU_END }}

GB_GPU_BEGIN

constexpr int kThreads = 256;           // threads per block of the one-thread-per-element kernels
constexpr int64_t kMaxBlocks = 65535;   // grid-stride loops cover the rest
constexpr unsigned kFullMask = 0xffffffffu;

// Blocks for n elements at `threads` per block, at least 1, at most kMaxBlocks.
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
    const int64_t b = (n + threads - 1) / threads;
    return static_cast<unsigned>(b < 1 ? 1 : (b > kMaxBlocks ? kMaxBlocks : b));
}

#if defined(__CUDACC__)
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, Args... args) {
    kernel<<<grid, block, shared_bytes>>>(args...);
    const cudaError_t err = cudaGetLastError();
    GB_CHECK(err == cudaSuccess, "CUDA kernel launch failed: ", cudaGetErrorString(err));
}
#else
using ::gb::cuda_emu::launch;
#endif
inline void* device_alloc(size_t bytes, int device) { return ::gb::cuda::malloc(bytes, device); }
inline void device_free(void* p, int device) { ::gb::cuda::free(p, device); }

// Scratch memory on the device for the duration of one backend call.
template <typename T>
class DeviceBuffer {
public:
    DeviceBuffer(int64_t count, int device)
        : device_(device),
          data_(static_cast<T*>(device_alloc(static_cast<size_t>(count > 0 ? count : 1) * sizeof(T), device))) {}
    ~DeviceBuffer() { device_free(data_, device_); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    T* get() const { return data_; }

private:
    int device_;
    T* data_;
};

GB_GPU_END
