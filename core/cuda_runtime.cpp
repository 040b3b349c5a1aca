// CUDA build: the runtime API behind core's device discovery, allocation and
// copies. Allocation goes through a caching allocator: a freed block is kept
// on its device's free list under its rounded size (512 B steps up to 1 MiB,
// then 2 MiB steps) and handed out again for the next request of that size, so
// a training loop that allocates the same shapes every step stops calling
// cudaMalloc/cudaFree (which synchronise the device) after its first step.
// Reuse is safe without events because all work runs on the legacy default
// stream, in order. When cudaMalloc fails, the cache is released and it retries.
#include "core/cuda_runtime.h"

#include <cuda_runtime_api.h>

#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/error.h"

namespace gb::cuda {

namespace {
void check(cudaError_t err, const char* what) {
    GB_CHECK(err == cudaSuccess, "CUDA ", what, " failed: ", cudaGetErrorString(err));
}
struct DeviceGuard {
    explicit DeviceGuard(int device) { check(cudaSetDevice(device), "cudaSetDevice"); }
};

size_t rounded_size(size_t bytes) {
    constexpr size_t kSmallStep = 512, kLargeStep = 2u << 20, kSmallLimit = 1u << 20;
    const size_t step = bytes <= kSmallLimit ? kSmallStep : kLargeStep;
    return (bytes + step - 1) / step * step;
}

struct Block {
    size_t bytes;
    int device;
};

class CachingAllocator {
public:
    void* allocate(size_t bytes, int device) {
        const size_t size = rounded_size(bytes == 0 ? 1 : bytes);
        std::lock_guard lock(mutex_);
        auto& bin = free_[{device, size}];
        if (!bin.empty()) {
            void* p = bin.back();
            bin.pop_back();
            live_[p] = Block{size, device};
            return p;
        }
        DeviceGuard g(device);
        void* p = nullptr;
        if (cudaMalloc(&p, size) != cudaSuccess) {
            cudaGetLastError();
            release_cached_locked();
            check(cudaMalloc(&p, size), "cudaMalloc");
        }
        live_[p] = Block{size, device};
        return p;
    }

    void release(void* p) {
        if (!p) return;
        std::lock_guard lock(mutex_);
        const auto it = live_.find(p);
        GB_CHECK(it != live_.end(), "gb::cuda::free of a pointer the allocator did not hand out");
        free_[{it->second.device, it->second.bytes}].push_back(p);
        live_.erase(it);
    }

    void release_cached() {
        std::lock_guard lock(mutex_);
        release_cached_locked();
    }

private:
    void release_cached_locked() {
        for (auto& [key, ptrs] : free_) {
            cudaSetDevice(key.first);
            for (void* p : ptrs) cudaFree(p);
            ptrs.clear();
        }
    }

    std::mutex mutex_;
    std::unordered_map<void*, Block> live_;
    std::map<std::pair<int, size_t>, std::vector<void*>> free_;
};

// Never destroyed: storages released during static destruction still find it,
// and the driver reclaims device memory at exit.
CachingAllocator& allocator() {
    static auto* a = new CachingAllocator();
    return *a;
}
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

void* malloc(size_t bytes, int device) { return allocator().allocate(bytes, device); }

void free(void* ptr, int) { allocator().release(ptr); }

void empty_cache() { allocator().release_cached(); }

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
