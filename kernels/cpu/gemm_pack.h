// Packing of GEMM operands into the panel layout of kernels/cpu/gemm_kernel.h,
// for a register tile of MR x NR. Included only by the micro-kernel files; the
// unnamed namespace gives each file its own copy, compiled (and vectorised) for
// that file's instruction set, so no copy built for AVX-512 can be linked into
// code that runs on a CPU without it.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/cpu/gemm_kernel.h"

namespace gb::kernels::cpu {
namespace {

template <int64_t MR>
void pack_a(const GemmOperand& a, int64_t mc, int64_t kc, float* __restrict out) {
    for (int64_t i0 = 0; i0 < mc; i0 += MR, out += kc * MR) {
        const int64_t mr = mc - i0 < MR ? mc - i0 : MR;
        if (a.trans) {
            // Column i of op(A) is contiguous: each k is one copy of mr floats.
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

}  // namespace
}  // namespace gb::kernels::cpu
