// Primitives of the gradient family and the model-level methods: per-row
// minimum and maximum (SmoothGrad's noise scale), Gaussian noise from the
// Philox stream (SmoothGrad's noisy copies) and the wrap-around shift of planes
// (activation maximisation's jitter).
#include <algorithm>

#include "core/parallel.h"
#include "core/philox.h"
#include "kernels/cpu/cpu_backend.h"

namespace gb::kernels {

void CpuBackend::row_min_max(int64_t rows, int64_t cols, const float* x, float* mins, float* maxs) {
    parallel_for(0, rows, std::max<int64_t>(1, cpu::kElementGrain / std::max<int64_t>(cols, 1)), [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
            const float* row = x + r * cols;
            float lo = row[0], hi = row[0];
            for (int64_t j = 1; j < cols; ++j) {
                lo = row[j] < lo ? row[j] : lo;
                hi = row[j] > hi ? row[j] : hi;
            }
            mins[r] = lo;
            maxs[r] = hi;
        }
    });
}

void CpuBackend::add_normal_noise(int64_t rows, int64_t cols, uint64_t seed, uint64_t offset, const float* stddev,
                                  float* x) {
    // Each draw costs two Philox blocks (far more than the add), hence the smaller grain.
    parallel_for(0, rows * cols, cpu::kElementGrain / 16, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
            x[i] += philox_normal_at(seed, offset, static_cast<uint64_t>(i), 0.f, stddev[i / cols]);
    });
}

void CpuBackend::roll2d(int64_t planes, int64_t H, int64_t W, int64_t dy, int64_t dx, const float* x, float* out) {
    dy = ((dy % H) + H) % H;
    dx = ((dx % W) + W) % W;
    parallel_for(0, planes * H, std::max<int64_t>(1, cpu::kElementGrain / std::max<int64_t>(W, 1)), [&](int64_t b, int64_t e) {
        for (int64_t py = b; py < e; ++py) {
            const int64_t p = py / H, y = py % H;
            const float* src = x + py * W;
            float* dst = out + (p * H + (y + dy) % H) * W;
            // Source columns [0, W - dx) land at [dx, W), the rest wraps to [0, dx).
            std::copy(src, src + (W - dx), dst + dx);
            std::copy(src + (W - dx), src + W, dst);
        }
    });
}

}  // namespace gb::kernels
