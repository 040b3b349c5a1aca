// The CPU allocator behind Storage: 64-byte-aligned blocks, with freed blocks
// of 64 KiB and more kept in per-size free lists (sizes rounded up to 4 KiB)
// and handed out again, so the hot loop of training or explaining stops
// paying for fresh pages (mmap + page faults) on every large tensor. At most
// `cache_limit()` bytes are kept; beyond that, blocks go back to the system.
#pragma once

#include <cstddef>

namespace gb::cpu_alloc {

void* allocate(size_t bytes);
void release(void* ptr, size_t bytes);
size_t cached_bytes();
size_t cache_limit();
// Returns every cached block to the system.
void empty_cache();

}  // namespace gb::cpu_alloc
