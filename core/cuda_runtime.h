// The CUDA runtime as core sees it: device discovery, allocation and copies.
// In a CPU-only build every function that needs a GPU raises gb::Error
// ("this glassbox was built without CUDA"); discovery returns 0 devices.
#pragma once

#include <cstddef>
#include <string>

namespace gb::cuda {

bool built();                       // true in a GB_CUDA build
int device_count();                 // 0 when not built or no GPU / no driver
std::string unavailable_reason();   // why device_count() is 0 ("" when a GPU exists)
std::string device_name(int index);

// Device memory through a caching allocator (freed blocks are reused for the
// next request of the same rounded size); empty_cache() returns them to CUDA.
void* malloc(size_t bytes, int device);
void free(void* ptr, int device);
void empty_cache();
void memcpy_h2d(void* dst, const void* src, size_t bytes, int device);
void memcpy_d2h(void* dst, const void* src, size_t bytes, int device);
void memcpy_d2d(void* dst, const void* src, size_t bytes, int device);
void memset_zero(void* dst, size_t bytes, int device);

}  // namespace gb::cuda
