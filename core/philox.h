// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011): a counter-based generator. Draw i of stream `seed` is a pure
// function of (seed, i), so the CPU and the CUDA backend produce the same
// dropout masks and noise from the same seed and offset.
#pragma once

#include <cmath>
#include <cstdint>

#include "hd.h"

namespace gb {

struct Philox4 {
    uint32_t v[4];
};

GB_HD inline void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
    const uint64_t p = static_cast<uint64_t>(a) * b;
    hi = static_cast<uint32_t>(p >> 32);
    lo = static_cast<uint32_t>(p);
}

// Four 32-bit random words for counter `ctr` under key `seed`.
GB_HD inline Philox4 philox4x32(uint64_t seed, uint64_t ctr) {
    uint32_t c0 = static_cast<uint32_t>(ctr), c1 = static_cast<uint32_t>(ctr >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        uint32_t hi0, lo0, hi1, lo1;
        philox_mulhilo(0xD2511F53u, c0, hi0, lo0);
        philox_mulhilo(0xCD9E8D57u, c2, hi1, lo1);
        const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return Philox4{{c0, c1, c2, c3}};
}

// Uniform float in [0, 1) from the top 24 bits of a word.
GB_HD inline float philox_uniform(uint32_t word) { return static_cast<float>(word >> 8) * (1.0f / 16777216.0f); }

// Uniform draw number i of stream (seed, offset): one word per draw.
GB_HD inline float philox_uniform_at(uint64_t seed, uint64_t offset, uint64_t i) {
    const uint64_t ctr = offset + i;
    return philox_uniform(philox4x32(seed, ctr >> 2).v[ctr & 3]);
}

// Normal draw number i of stream (seed, offset) by Box-Muller: two words per draw
// (counters offset + 2i and offset + 2i + 1), 1 - u keeping the log argument in
// (0, 1]. Generator::normal is this with i = 0 at its offset, so a kernel that
// draws element i this way reproduces n calls of Generator::normal. The words are
// the same on every backend; logf/cosf/sqrtf are the host's libm on the CPU (and
// the emulated CUDA device), CUDA's within 1-2 ulp of them on a GPU.
GB_HD inline float philox_normal_at(uint64_t seed, uint64_t offset, uint64_t i, float mean, float stddev) {
    const uint64_t c1 = offset + 2 * i, c2 = c1 + 1;
    const float u1 = 1.0f - philox_uniform(philox4x32(seed, c1 >> 2).v[c1 & 3]);
    const float u2 = philox_uniform(philox4x32(seed, c2 >> 2).v[c2 & 3]);
    const float r = sqrtf(-2.0f * logf(u1));
    return mean + stddev * r * cosf(6.28318530717958647692f * u2);
}

}  // namespace gb
