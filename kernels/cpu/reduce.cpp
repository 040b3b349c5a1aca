// Reductions over the middle axis of [outer, reduce, inner] (sum_dim), its
// backward (broadcast_dim) and the per-channel bias gradient. Sums accumulate
// in double so a million float terms stay accurate to float rounding; the
// partition into partial sums is fixed, so results do not depend on the
// thread count.
#include <algorithm>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/cpu_backend.h"

namespace gb::kernels {

namespace {

// Sum of n contiguous floats in double: independent partial sums per vector
// lane (a fixed order for a given build, so results repeat run to run).
double sum_contig(const float* x, int64_t n) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += x[i];
    return s;
}

constexpr int64_t kSegment = 1 << 14;  // fixed partial-sum length for long rows
constexpr int64_t kTile = 256;         // inner columns accumulated together

// One long contiguous row summed by threads over fixed segments.
double sum_long_row(const float* x, int64_t n) {
    const int64_t segs = (n + kSegment - 1) / kSegment;
    std::vector<double> partial(static_cast<size_t>(segs));
    parallel_for(0, segs, 4, [&](int64_t s0, int64_t s1) {
        for (int64_t s = s0; s < s1; ++s) {
            const int64_t b = s * kSegment;
            partial[static_cast<size_t>(s)] = sum_contig(x + b, std::min(kSegment, n - b));
        }
    });
    double total = 0;
    for (double p : partial) total += p;
    return total;
}

}  // namespace

void CpuBackend::sum_dim(int64_t outer, int64_t reduce, int64_t inner, const float* x, float* out) {
    if (outer <= 0 || inner <= 0) return;
    if (inner == 1) {
        if (outer < num_threads() && reduce >= 4 * kSegment) {
            for (int64_t o = 0; o < outer; ++o) out[o] = static_cast<float>(sum_long_row(x + o * reduce, reduce));
            return;
        }
        parallel_for(0, outer, std::max<int64_t>(1, cpu::kElementGrain / std::max<int64_t>(reduce, 1)),
                     [&](int64_t o0, int64_t o1) {
                         for (int64_t o = o0; o < o1; ++o)
                             out[o] = static_cast<float>(sum_contig(x + o * reduce, reduce));
                     });
        return;
    }
    const int64_t tiles = (inner + kTile - 1) / kTile;
    const int64_t work = std::max<int64_t>(1, reduce * std::min(inner, kTile));
    parallel_for(0, outer * tiles, std::max<int64_t>(1, cpu::kElementGrain / work), [&](int64_t t0, int64_t t1) {
        double acc[kTile];
        for (int64_t t = t0; t < t1; ++t) {
            const int64_t o = t / tiles, i0 = (t % tiles) * kTile, w = std::min(kTile, inner - i0);
            std::fill(acc, acc + w, 0.0);
            const float* base = x + o * reduce * inner + i0;
            for (int64_t r = 0; r < reduce; ++r) {
                const float* row = base + r * inner;
                for (int64_t i = 0; i < w; ++i) acc[i] += row[i];
            }
            float* dst = out + o * inner + i0;
            for (int64_t i = 0; i < w; ++i) dst[i] = static_cast<float>(acc[i]);
        }
    });
}

void CpuBackend::broadcast_dim(int64_t outer, int64_t reduce, int64_t inner, float alpha, const float* g,
                               float* out) {
    if (inner <= 0) return;
    parallel_for(0, outer * reduce, std::max<int64_t>(1, cpu::kElementGrain / inner), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* src = g + (r / reduce) * inner;
            float* dst = out + r * inner;
            for (int64_t i = 0; i < inner; ++i) dst[i] = alpha * src[i];
        }
    });
}

void CpuBackend::bias_grad(int64_t outer, int64_t channels, int64_t inner, const float* dy, float* dbias) {
    const int64_t work = std::max<int64_t>(1, outer * inner);
    parallel_for(0, channels, std::max<int64_t>(1, cpu::kElementGrain / work), [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
            double s = 0;
            for (int64_t o = 0; o < outer; ++o) s += sum_contig(dy + (o * channels + c) * inner, inner);
            dbias[c] = static_cast<float>(s);
        }
    });
}

}  // namespace gb::kernels
