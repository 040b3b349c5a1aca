// Inverted dropout: mask[i] = (u_i >= p) / (1 - p), y = x * mask, with
// u_i = philox_uniform_at(seed, offset, i) so the CUDA backend draws the same
// mask. One Philox call yields the four draws that share a counter block.
#include <algorithm>

#include "core/parallel.h"
#include "core/philox.h"
#include "kernels/common/dropout.h"
#include "kernels/cpu/cpu_backend.h"

namespace gb::kernels {

void CpuBackend::dropout_forward(int64_t n, float p, uint64_t seed, uint64_t offset, const float* x, float* y,
                                 float* mask) {
    const float keep_scale = dropout_scale(p);
    parallel_for(0, n, cpu::kElementGrain / 4, [&](int64_t b, int64_t e) {
        int64_t i = b;
        while (i < e) {
            const uint64_t ctr = offset + static_cast<uint64_t>(i);
            const Philox4 words = philox4x32(seed, ctr >> 2);
            for (uint64_t lane = ctr & 3; lane < 4 && i < e; ++lane, ++i) {
                const float m = dropout_mask(philox_uniform(words.v[lane]), p, keep_scale);
                mask[i] = m;
                y[i] = x[i] * m;
            }
        }
    });
}

}  // namespace gb::kernels
