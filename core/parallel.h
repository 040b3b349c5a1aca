// parallel_for: split [begin, end) into contiguous chunks of at least `grain`
// items and run fn(chunk_begin, chunk_end) on the worker threads (OpenMP).
// Runs inline when the range is small or when already inside a parallel region.
#pragma once

#include <cstdint>
#include <functional>

namespace gb {

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

int num_threads();
// Sets the worker count for later parallel_for calls (n >= 1).
void set_num_threads(int n);

}  // namespace gb
