// parallel_for: split [begin, end) into contiguous chunks of
// step = ceil(n / parallel_chunks(n, grain)) items (n = end - begin; the last
// chunk may be shorter, so there may be fewer chunks than parallel_chunks says),
// and run fn(chunk_begin, chunk_end) on glassbox's
// thread pool (core/parallel.cpp), the calling thread included. The chunks
// depend only on the range, the grain and the thread count, never on timing;
// which thread runs which chunk does.
// Runs inline when the range is small, when called from inside a chunk, or while
// another thread's call is using the pool. An exception thrown by fn is rethrown
// to the caller once every chunk has finished (the first caught, if several throw).
#pragma once

#include <cstdint>
#include <functional>

namespace gb {

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

// The thread count: set_num_threads, else $GB_NUM_THREADS, else $OMP_NUM_THREADS,
// else the CPUs this process may run on (its affinity mask).
int num_threads();
// The number of chunks parallel_for divides n items into at this grain (at most;
// see above): min(4 * num_threads(), ceil(n / grain), 65535); 1 on one thread;
// 0 for n <= 0.
int64_t parallel_chunks(int64_t n, int64_t grain);
// Sets the thread count for later parallel_for calls (1 <= n <= 1024).
void set_num_threads(int n);

}  // namespace gb
