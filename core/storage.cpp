#include "core/storage.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "core/cuda_runtime.h"
#include "core/error.h"

namespace gb {

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
    const size_t alloc = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
    if (device.is_cpu()) {
        data_ = std::aligned_alloc(64, alloc);
        if (!data_) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes on the CPU");
    } else {
        data_ = cuda::malloc(alloc, device.index());
    }
}

Storage::~Storage() {
    if (device_.is_cpu())
        std::free(data_);
    else
        cuda::free(data_, device_.index());
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
    if (bytes == 0) return;
    if (dst_device.is_cpu() && src_device.is_cpu())
        std::memcpy(dst, src, bytes);
    else if (dst_device.is_cpu())
        cuda::memcpy_d2h(dst, src, bytes, src_device.index());
    else if (src_device.is_cpu())
        cuda::memcpy_h2d(dst, src, bytes, dst_device.index());
    else {
        GB_CHECK(dst_device == src_device, "copies between two GPUs (", src_device.str(), " -> ",
                 dst_device.str(), ") go through the host: use .to(cpu) first");
        cuda::memcpy_d2d(dst, src, bytes, dst_device.index());
    }
}

}  // namespace gb
