// The CPU backend's SGEMM beyond Backend::gemm: a fused epilogue for callers in
// kernels/cpu (conv bias + ReLU) and the choice of instruction set.
//   gemm_ex: C = epilogue(alpha * op(A) * op(B) + beta * C), row-major, where the
//   epilogue adds row_bias[i] (per row of C: conv output channels) and
//   col_bias[j] (per column: linear outputs) when given, then applies ReLU when
//   asked. beta == 0 never reads C. CpuBackend::gemm is gemm_ex without epilogue.
// The micro-kernel is chosen once at run time (the best the CPU supports, or
// $GB_GEMM_ISA = avx512 | avx2 | scalar) and can be forced with set_gemm_isa.
#pragma once

#include <algorithm>
#include <cstdint>

namespace gb::kernels::cpu {

struct GemmEpilogue {
    const float* row_bias = nullptr;  // [M] or null
    const float* col_bias = nullptr;  // [N] or null
    bool relu = false;
};

void gemm_ex(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
             const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmEpilogue& ep);

// op(B) packed ahead of time into the current micro-kernel's panel layout, for
// callers that can produce B straight into it (conv.cpp writes im2col there):
// element (k, j) of the K x N matrix lives at
//   pc * npad + (j / nr) * nr * kc_pc + (k - pc) * nr + j % nr,
// where pc = k - k % kc starts k's depth block and kc_pc = min(kc, K - pc) is
// that block's depth; columns [N, npad) of every panel are zero. `size` floats in all.
struct PackedBLayout {
    int64_t nr, kc, npad, size;
    int64_t offset(int64_t k, int64_t j, int64_t K) const {
        const int64_t pc = k - k % kc, kc_pc = std::min(kc, K - pc);
        return pc * npad + (j / nr) * nr * kc_pc + (k - pc) * nr + j % nr;
    }
};
PackedBLayout packed_b_layout(int64_t K, int64_t N);
// Whether gemm_ex(false, false, M, N, ...) would pack B at all: false where it
// takes an unpacked path (at most four rows or columns of C) or computes C^T
// (few columns); prepacking would then cost more than it saves.
bool gemm_packs_b(int64_t M, int64_t N);

// gemm_ex(false, false, ...) with B already packed by packed_b_layout(K, N)
// (laid out for the instruction set current at the time of the call).
void gemm_packed_b(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* packed_b,
                   float beta, float* C, int64_t ldc, const GemmEpilogue& ep);

enum class GemmIsa { Scalar, Avx2, Avx512 };

// Whether this build and this CPU can run `isa` (Scalar always can).
bool gemm_isa_available(GemmIsa isa);
// Forces later GEMMs onto `isa`; gb::Error when it is not available.
void set_gemm_isa(GemmIsa isa);
GemmIsa gemm_isa();
const char* gemm_isa_name(GemmIsa isa);

}  // namespace gb::kernels::cpu
