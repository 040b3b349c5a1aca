// The CPU backend instance, backend selection by device, and the per-thread
// grow-only scratch buffers the CPU kernels share.
#include <array>
#include <memory>

#include "core/error.h"
#include "kernels/cpu/cpu_backend.h"

namespace gb::kernels {

Backend& cpu_backend() {
    static CpuBackend backend;
    return backend;
}

Backend& backend_for(Device device) {
    if (device.is_cpu()) return cpu_backend();
    GB_FAIL("no backend for device ", device.str(), ": the CUDA backend is not built in this glassbox");
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

}  // namespace cpu

}  // namespace gb::kernels
