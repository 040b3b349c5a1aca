#include "core/cpu_allocator.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "core/profile.h"

namespace gb::cpu_alloc {

namespace {

constexpr size_t kSmall = 64 * 1024;     // below this, malloc's own free lists are fine
constexpr size_t kPage = 4096;
#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kLimit = 0;  // AddressSanitizer builds cache nothing, so use-after-free stays visible
#else
constexpr size_t kLimit = size_t(1) << 30;  // 1 GiB of cached blocks at most
#endif

struct Cache {
    std::mutex mutex;
    std::map<size_t, std::vector<void*>> free;  // rounded size -> blocks
    size_t bytes = 0;
};

// Never destroyed: tensors held by other static objects are released after
// static destructors have run, and must still find a live cache.
Cache& cache() {
    static Cache* c = new Cache;
    return *c;
}

size_t rounded(size_t bytes) {
    if (bytes < kSmall) return (bytes + 63) / 64 * 64;
    return (bytes + kPage - 1) / kPage * kPage;
}

}  // namespace

void* allocate(size_t bytes) {
    const size_t size = rounded(bytes == 0 ? 64 : bytes);
    if (size >= kSmall) {
        Cache& c = cache();
        std::lock_guard<std::mutex> lock(c.mutex);
        auto it = c.free.find(size);
        if (it != c.free.end() && !it->second.empty()) {
            void* p = it->second.back();
            it->second.pop_back();
            c.bytes -= size;
            return p;
        }
    }
    const profile::Scope scope(nullptr, "allocation (fresh block)");
    void* p = std::aligned_alloc(size >= kSmall ? kPage : 64, size);
    if (!p) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes on the CPU");
    return p;
}

void release(void* ptr, size_t bytes) {
    if (!ptr) return;
    const size_t size = rounded(bytes == 0 ? 64 : bytes);
    if (size >= kSmall) {
        Cache& c = cache();
        std::lock_guard<std::mutex> lock(c.mutex);
        if (c.bytes + size <= kLimit) {
            c.free[size].push_back(ptr);
            c.bytes += size;
            return;
        }
    }
    std::free(ptr);
}

size_t cached_bytes() {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    return c.bytes;
}

size_t cache_limit() { return kLimit; }

void empty_cache() {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    for (auto& [size, blocks] : c.free)
        for (void* p : blocks) std::free(p);
    c.free.clear();
    c.bytes = 0;
}

}  // namespace gb::cpu_alloc
