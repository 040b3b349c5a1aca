// The CPU backend instance, backend selection by device (the CUDA backend in CUDA builds), and the per-thread
// grow-only scratch buffers the CPU kernels share.
#include <array>
#include <memory>

#include "core/error.h"
#include "kernels/cpu/cpu_backend.h"
#if defined(GB_WITH_CUDA)
#include "kernels/cuda/registry.h"
#endif

namespace gb::kernels {

Backend& cpu_backend() {
    static CpuBackend backend;
    return backend;
}

Backend& backend_for(Device device) {
    if (device.is_cpu()) return cpu_backend();
#if defined(GB_WITH_CUDA)
    return cuda_backend(device.index());
#else
    GB_FAIL("no backend for device ", device.str(), ": the CUDA backend is not built in this glassbox");
#endif
}

namespace cpu {

namespace {
struct Buffer {
    std::unique_ptr<float[]> data;
    size_t capacity = 0;
};
}  // namespace

float* scratch(Scratch slot, size_t count) {
    thread_local std::array<Buffer, static_cast<size_t>(Scratch::Count)> buffers;
    Buffer& b = buffers[static_cast<size_t>(slot)];
    if (count > b.capacity) {
        b.data.reset(new float[count]);
        b.capacity = count;
    }
    return b.data.get();
}

float* aligned_scratch(Scratch slot, int64_t count) {
    float* p = scratch(slot, static_cast<size_t>(count) + 16);
    return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
}

}  // namespace cpu

}  // namespace gb::kernels
