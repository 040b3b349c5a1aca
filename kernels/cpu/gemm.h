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
#include <functional>

namespace gb::kernels::cpu {

struct GemmEpilogue {
    const float* row_bias = nullptr;  // [M] or null
    const float* col_bias = nullptr;  // [N] or null
    bool relu = false;
};

void gemm_ex(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
             const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmEpilogue& ep);

// Operands packed ahead of time into the current micro-kernel's panel layout,
// for callers that reuse one (a convolution's weight over the images of a batch)
// or can produce one directly (im2col written straight into panels). Element
// (idx, k) of op(A) (idx = row) or op(B) (idx = column), depth K, lives at
//   pc * pad + (idx / r) * r * kc_pc + (k - pc) * r + idx % r,
// where pc = k - k % kc starts k's depth block, kc_pc = min(kc, K - pc) is that
// block's depth and r is the register tile's rows (A) or columns (B). Entries
// [M or N, pad) of the last panel are multiplied but never stored, so they may
// hold anything. `size` floats in all; the buffer must be 64-byte aligned.
// Layouts belong to the instruction set current when they are made.
struct PackedLayout {
    int64_t r, kc, pad, size;
    int64_t offset(int64_t idx, int64_t k, int64_t K) const {
        const int64_t pc = k - k % kc, kc_pc = std::min(kc, K - pc);
        return pc * pad + (idx / r) * r * kc_pc + (k - pc) * r + idx % r;
    }
};
PackedLayout packed_a_layout(int64_t M, int64_t K);
PackedLayout packed_b_layout(int64_t K, int64_t N);
// op(A) (M x K) into packed_a_layout(M, K) at `out`.
void pack_a_ahead(bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda, float* out);

// gemm_ex(..., op(A), op(B), ...) with either operand already packed (null:
// take it from A / B as usual, op = no transpose for B, trans_a for A).
struct Prepacked {
    const float* a = nullptr;
    const float* b = nullptr;
};
void gemm_prepacked(bool trans_a, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                    const float* B, int64_t ldb, const Prepacked& packed, float beta, float* C, int64_t ldc,
                    const GemmEpilogue& ep);
// C = epilogue(alpha * A * B + beta * C) with A packed ahead (pack_a_ahead) and B
// never stored whole: `fill(pc, kc, j0, panel)` writes rows [pc, pc + kc) and
// columns [j0, j0 + r) of B as one panel, panel[(k - pc) * r + (j - j0)]
// (r = packed_b_layout(K, N).r; columns past N may hold anything), right before
// the micro-kernel multiplies it, so a panel lives in L1 from its making to its
// use (an implicit GEMM: the convolutions fill panels straight from the image).
// Threads split the panels; fill runs on the thread that uses the panel.
using PanelFill = std::function<void(int64_t pc, int64_t kc, int64_t j0, float* panel)>;
void gemm_fill_b(int64_t M, int64_t N, int64_t K, float alpha, const float* packed_a, const PanelFill& fill,
                 float beta, float* C, int64_t ldc, const GemmEpilogue& ep);

// True when a C of M x N takes gemm_ex's packed, blocked loop whatever op(A) is:
// more than four rows and columns (fewer may take an unpacked path) and not
// computed as C^T (few columns). gemm_prepacked takes only such shapes.
bool gemm_packs(int64_t M, int64_t N);

enum class GemmIsa { Scalar, Avx2, Avx512 };

// Whether this build and this CPU can run `isa` (Scalar always can).
bool gemm_isa_available(GemmIsa isa);
// Forces later GEMMs onto `isa`; gb::Error when it is not available.
void set_gemm_isa(GemmIsa isa);
GemmIsa gemm_isa();
const char* gemm_isa_name(GemmIsa isa);

}  // namespace gb::kernels::cpu
