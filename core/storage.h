// Storage: one block of bytes on one device: owned (64-byte aligned on the CPU), or
// borrowed from its owner (a NumPy array for the Python module), which `release`
// hands back when the last tensor on it goes. Kernels never assume alignment of a
// tensor's data (a batch slice starts anywhere), so borrowed memory needs none.
// Tensors share storages; `version` is bumped by every in-place write so that
// caches derived from a tensor (e.g. LRP-modified weights) know when to refresh.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "device.h"

namespace gb {

class Storage {
public:
    Storage(size_t bytes, Device device);
    Storage(void* data, size_t bytes, Device device, std::function<void()> release);
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
    std::function<void()> release_;  // set for borrowed memory
};

// Copies `bytes` between any two devices (host<->device, device<->device).
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);

}  // namespace gb
