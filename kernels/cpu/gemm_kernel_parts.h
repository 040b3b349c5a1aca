// Parts of every micro-kernel file: packing of GEMM operands into the panel
// layout of kernels/cpu/gemm_kernel.h for a register tile of MR x NR, and an
// element-by-element tile store. Included only by the micro-kernel files; the
// unnamed namespace gives each file its own copy, compiled (and vectorised) for
// that file's instruction set, so no copy built for AVX-512 can be linked into
// code that runs on a CPU without it.
#pragma once

#include <cstdint>
#include <cstring>

#include "gemm_kernel.h"

namespace gb::kernels::cpu {
namespace {

template <int64_t MR>
void pack_a(const GemmOperand& a, int64_t mc, int64_t kc, float* __restrict out) {
    for (int64_t i0 = 0; i0 < mc; i0 += MR, out += kc * MR) {
        const int64_t mr = mc - i0 < MR ? mc - i0 : MR;
        if (a.trans) {
            // Column i of op(A) is contiguous: each k is one copy of mr floats
            // (of a compile-time size for full panels, so it becomes vector moves).
            if (mr == MR)
                for (int64_t k = 0; k < kc; ++k) std::memcpy(out + k * MR, a.at(i0, k), sizeof(float) * MR);
            else
                for (int64_t k = 0; k < kc; ++k) std::memcpy(out + k * MR, a.at(i0, k), sizeof(float) * mr);
        } else {
            for (int64_t i = 0; i < mr; ++i) {
                const float* __restrict src = a.at(i0 + i, 0);
                for (int64_t k = 0; k < kc; ++k) out[k * MR + i] = src[k];
            }
        }
    }
}

template <int64_t NR>
void pack_b(const GemmOperand& b, int64_t kc, int64_t nc, float* __restrict out) {
    for (int64_t j0 = 0; j0 < nc; j0 += NR, out += kc * NR) {
        const int64_t nr = nc - j0 < NR ? nc - j0 : NR;
        if (!b.trans && nr == NR) {
            for (int64_t k = 0; k < kc; ++k) std::memcpy(out + k * NR, b.at(k, j0), sizeof(float) * NR);
        } else if (!b.trans) {
            for (int64_t k = 0; k < kc; ++k) {
                std::memcpy(out + k * NR, b.at(k, j0), sizeof(float) * nr);
                std::memset(out + k * NR + nr, 0, sizeof(float) * (NR - nr));
            }
        } else {
            // Row j of op(B)^T is contiguous: read along k, write down the panel.
            for (int64_t j = 0; j < nr; ++j) {
                const float* __restrict src = b.at(0, j0 + j);
                for (int64_t k = 0; k < kc; ++k) out[k * NR + j] = src[k];
            }
            for (int64_t k = 0; k < kc; ++k) std::memset(out + k * NR + nr, 0, sizeof(float) * (NR - nr));
        }
    }
}

// Writes the m x n tile acc (row stride acc_ld) to C by the rules of `s`.
void store_tile(const float* acc, int64_t acc_ld, int64_t m, int64_t n, float* c, int64_t ldc, const TileStore& s) {
    const int64_t rs = s.transposed ? 1 : ldc, cs = s.transposed ? ldc : 1;
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
            float& out = c[i * rs + j * cs];
            float v = s.alpha * acc[i * acc_ld + j];
            if (s.beta != 0.f) v += s.beta * out;
            if (s.row_bias) v += s.row_bias[i];
            if (s.col_bias) v += s.col_bias[j];
            if (s.relu && v < 0.f) v = 0.f;
            out = v;
        }
}

// MicroKernel::fma_loop for a register type V of `lanes` floats: twelve
// independent chains of v = v * m + a (enough to cover the multiply-add latency
// on two pipes), `iters` rounds; the file passes its broadcast and fused
// multiply-add. Returns the flops done.
template <typename V, int lanes, typename Set1, typename Fma>
double fma_chains(int64_t iters, Set1 set1, Fma fma) {
    constexpr int kChains = 12;
    V acc[kChains];
    for (int i = 0; i < kChains; ++i) acc[i] = set1(1.f + 0.01f * static_cast<float>(i));
    const V m = set1(0.9999f), add = set1(1e-4f), one = set1(1.f);
    for (int64_t it = 0; it < iters; ++it)
        for (int i = 0; i < kChains; ++i) acc[i] = fma(acc[i], m, add);
    for (int i = 1; i < kChains; ++i) acc[0] = fma(acc[i], one, acc[0]);  // keeps every chain live
    float out[lanes];
    std::memcpy(out, &acc[0], sizeof out);
    volatile float sink = out[0];
    (void)sink;
    return 2.0 * lanes * kChains * static_cast<double>(iters);
}

}  // namespace
}  // namespace gb::kernels::cpu
