// The CPU backend instance and its registrar (kernels/registry.h), and the
// per-thread grow-only scratch buffers the CPU kernels share.
#include <array>
#include <memory>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/registry.h"

namespace gb::kernels {

Backend& cpu_backend() {
    static CpuBackend backend;
    return backend;
}

void register_cpu_backend() {
    register_backend(DeviceType::CPU, [](int) -> Backend& { return cpu_backend(); });
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
