// CUDA build: the runtime API behind core's device discovery, allocation and copies.
#include "core/cuda_runtime.h"

#include <cuda_runtime_api.h>

#include "core/error.h"

namespace gb::cuda {

namespace {
void check(cudaError_t err, const char* what) {
    GB_CHECK(err == cudaSuccess, "CUDA ", what, " failed: ", cudaGetErrorString(err));
}
struct DeviceGuard {
    explicit DeviceGuard(int device) { check(cudaSetDevice(device), "cudaSetDevice"); }
};
}  // namespace

bool built() { return true; }

int device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky error so later calls are not poisoned
        return 0;
    }
    return n;
}

std::string unavailable_reason() {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        cudaGetLastError();
        return std::string("the CUDA runtime reports: ") + cudaGetErrorString(err);
    }
    return n == 0 ? "the CUDA runtime found no GPU" : "";
}

std::string device_name(int index) {
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties");
    return prop.name;
}

void* malloc(size_t bytes, int device) {
    DeviceGuard g(device);
    void* p = nullptr;
    check(cudaMalloc(&p, bytes), "cudaMalloc");
    return p;
}

void free(void* ptr, int device) {
    if (!ptr) return;
    cudaSetDevice(device);
    cudaFree(ptr);
}

void memcpy_h2d(void* dst, const void* src, size_t bytes, int device) {
    DeviceGuard g(device);
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy host->device");
}
void memcpy_d2h(void* dst, const void* src, size_t bytes, int device) {
    DeviceGuard g(device);
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy device->host");
}
void memcpy_d2d(void* dst, const void* src, size_t bytes, int device) {
    DeviceGuard g(device);
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy device->device");
}
void memset_zero(void* dst, size_t bytes, int device) {
    DeviceGuard g(device);
    check(cudaMemset(dst, 0, bytes), "cudaMemset");
}

}  // namespace gb::cuda
