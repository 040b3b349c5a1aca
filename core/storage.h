// Storage: one owned block of bytes on one device (64-byte aligned on the CPU).
// Tensors share storages; `version` is bumped by every in-place write so that
// caches derived from a tensor (e.g. LRP-modified weights) know when to refresh.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/device.h"

namespace gb {

class Storage {
public:
    Storage(size_t bytes, Device device);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;

    void* data() { return data_; }
    const void* data() const { return data_; }
    size_t bytes() const { return bytes_; }
    Device device() const { return device_; }
    uint64_t version() const { return version_; }
    void bump_version() { ++version_; }

private:
    void* data_ = nullptr;
    size_t bytes_ = 0;
    Device device_;
    uint64_t version_ = 0;
};

// Copies `bytes` between any two devices (host<->device, device<->device).
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);

}  // namespace gb
