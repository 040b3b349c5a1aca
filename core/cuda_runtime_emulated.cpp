// The emulated CUDA device's runtime (library glassbox_cuda_emulated, in place
// of cuda_runtime.cpp / cuda_runtime_none.cpp): one "GPU", cuda:0, whose device
// memory is host memory, so tensors on cuda:0 run the CUDA backend's kernels
// through the emulator (kernels/cuda/emulator/) on the CPU. Allocations are
// filled with NaN bytes (0xFF), so a kernel that reads what it never wrote
// shows up in the comparisons. The copies are plain memcpy: host code that
// reads a device tensor's memory directly works here but would fail on a GPU,
// which this runtime cannot detect.
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_set>

#include "core/cuda_runtime.h"
#include "core/error.h"

namespace gb::cuda {

namespace {

constexpr size_t kAlignment = 256;  // cudaMalloc's guarantee

void check_device(int device) {
    GB_CHECK(device == 0, "emulated CUDA runtime: device ", device, " requested, but only cuda:0 exists");
}

// The live allocations, so a stray free is an error as on the real allocator.
struct Live {
    std::mutex mutex;
    std::unordered_set<void*> blocks;
};
// Never destroyed: storages released during static destruction still find it.
Live& live() {
    static auto* l = new Live();
    return *l;
}

}  // namespace

bool built() { return true; }
int device_count() { return 1; }
std::string unavailable_reason() { return ""; }
std::string device_name(int index) {
    check_device(index);
    return "CUDA emulator (host memory)";
}

void* malloc(size_t bytes, int device) {
    check_device(device);
    const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment + kAlignment;
    void* p = std::aligned_alloc(kAlignment, rounded);
    GB_CHECK(p, "emulated CUDA runtime: out of host memory allocating ", bytes, " bytes");
    std::memset(p, 0xFF, rounded);
    std::lock_guard lock(live().mutex);
    live().blocks.insert(p);
    return p;
}

void free(void* ptr, int) {
    if (!ptr) return;
    {
        std::lock_guard lock(live().mutex);
        GB_CHECK(live().blocks.erase(ptr) == 1, "gb::cuda::free of a pointer the allocator did not hand out");
    }
    std::free(ptr);
}

void empty_cache() {}

void memcpy_h2d(void* dst, const void* src, size_t bytes, int device) {
    check_device(device);
    if (bytes) std::memcpy(dst, src, bytes);
}
void memcpy_d2h(void* dst, const void* src, size_t bytes, int device) {
    check_device(device);
    if (bytes) std::memcpy(dst, src, bytes);
}
void memcpy_d2d(void* dst, const void* src, size_t bytes, int device) {
    check_device(device);
    if (bytes) std::memcpy(dst, src, bytes);
}
void memset_zero(void* dst, size_t bytes, int device) {
    check_device(device);
    if (bytes) std::memset(dst, 0, bytes);
}

}  // namespace gb::cuda
