// The CPU backend's SGEMM beyond Backend::gemm: a fused epilogue for callers in
// kernels/cpu (conv bias + ReLU) and the choice of instruction set.
//   gemm_ex: C = epilogue(alpha * op(A) * op(B) + beta * C), row-major, where the
//   epilogue adds row_bias[i] (per row of C: conv output channels) and
//   col_bias[j] (per column: linear outputs) when given, then applies ReLU when
//   asked. beta == 0 never reads C. CpuBackend::gemm is gemm_ex without epilogue.
// The micro-kernel is chosen once at run time (the best the CPU supports, or
// $GB_GEMM_ISA = avx512 | avx2 | scalar) and can be forced with set_gemm_isa.
#pragma once

#include <cstdint>

namespace gb::kernels::cpu {

struct GemmEpilogue {
    const float* row_bias = nullptr;  // [M] or null
    const float* col_bias = nullptr;  // [N] or null
    bool relu = false;
};

void gemm_ex(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
             const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmEpilogue& ep);

enum class GemmIsa { Scalar, Avx2, Avx512 };

// Whether this build and this CPU can run `isa` (Scalar always can).
bool gemm_isa_available(GemmIsa isa);
// Forces later GEMMs onto `isa`; gb::Error when it is not available.
void set_gemm_isa(GemmIsa isa);
GemmIsa gemm_isa();
const char* gemm_isa_name(GemmIsa isa);

}  // namespace gb::kernels::cpu
