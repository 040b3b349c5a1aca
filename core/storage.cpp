#include "core/storage.h"

#include <cstring>
#include <new>
#include <utility>

#include "core/cpu_allocator.h"
#include "core/cuda_runtime.h"
#include "core/error.h"

namespace gb {

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
    if (device.is_cpu())
        data_ = cpu_alloc::allocate(bytes);
    else
        data_ = cuda::malloc(bytes == 0 ? 64 : (bytes + 63) / 64 * 64, device.index());
}

Storage::Storage(void* data, size_t bytes, Device device, std::function<void()> release)
    : data_(data), bytes_(bytes), device_(device), release_(std::move(release)) {
    GB_CHECK(release_, "Storage: borrowed memory needs a release function");
}

Storage::~Storage() {
    if (release_) {
        release_();
        return;
    }
    if (device_.is_cpu())
        cpu_alloc::release(data_, bytes_);
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
