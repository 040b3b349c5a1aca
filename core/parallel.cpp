#include "core/parallel.h"

#include <algorithm>

#include "core/error.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace gb {

namespace {
int g_threads = 0;  // 0: not yet decided
}

int num_threads() {
    if (g_threads == 0) {
#ifdef _OPENMP
        g_threads = std::max(1, omp_get_max_threads());
#else
        g_threads = 1;
#endif
    }
    return g_threads;
}

void set_num_threads(int n) {
    GB_CHECK(n >= 1, "set_num_threads: need at least 1 thread, got ", n);
    g_threads = n;
}

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
    const int64_t n = end - begin;
    if (n <= 0) return;
    grain = std::max<int64_t>(grain, 1);
    int64_t chunks = std::min<int64_t>(num_threads(), (n + grain - 1) / grain);
#ifdef _OPENMP
    if (omp_in_parallel()) chunks = 1;
#endif
    if (chunks <= 1) {
        fn(begin, end);
        return;
    }
    const int64_t step = (n + chunks - 1) / chunks;
#ifdef _OPENMP
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
#endif
    for (int64_t c = 0; c < chunks; ++c) {
        const int64_t b = begin + c * step;
        const int64_t e = std::min(end, b + step);
        if (b < e) fn(b, e);
    }
}

}  // namespace gb
