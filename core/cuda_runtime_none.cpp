// CPU-only build: no CUDA runtime. Discovery says so; anything else raises.
#include "core/cuda_runtime.h"
#include "core/error.h"

namespace gb::cuda {

namespace {
[[noreturn]] void no_cuda() { GB_FAIL("this glassbox was built without CUDA (GB_CUDA=OFF or no toolkit found)"); }
}  // namespace

bool built() { return false; }
int device_count() { return 0; }
std::string unavailable_reason() { return "this glassbox was built without CUDA"; }
std::string device_name(int) { no_cuda(); }
void* malloc(size_t, int) { no_cuda(); }
void free(void*, int) {}
void empty_cache() {}
void memcpy_h2d(void*, const void*, size_t, int) { no_cuda(); }
void memcpy_d2h(void*, const void*, size_t, int) { no_cuda(); }
void memcpy_d2d(void*, const void*, size_t, int) { no_cuda(); }
void memset_zero(void*, size_t, int) { no_cuda(); }

}  // namespace gb::cuda
