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

}  // namespace
}  // namespace gb::kernels::cpu
