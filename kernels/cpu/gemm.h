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
#include <functional>

namespace gb::kernels::cpu {

struct GemmEpilogue {
    const float* row_bias = nullptr;  // [M] or null
    const float* col_bias = nullptr;  // [N] or null
    bool relu = false;
};

void gemm_ex(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
             const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmEpilogue& ep);

// op(A) packed ahead of time into the current micro-kernel's panel layout, for
// callers that reuse it (a convolution's weight over the images of a batch):
// row panels of `mr` rows, each depth block of `kc` (the last may be shallower)
// after the previous one. `size` floats in all; the buffer must be 64-byte
// aligned. Layouts belong to the instruction set current when they are made.
struct PackedA {
    int64_t mr, kc, pad, size;  // pad: M rounded up to whole panels
};
PackedA packed_a_layout(int64_t M, int64_t K);
// op(A) (M x K) into packed_a_layout(M, K) at `out`, the blocks shared out over the threads.
void pack_a_ahead(bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda, float* out);
// Columns of the micro-kernel's B panels (gemm_rows_b's `r`).
int64_t gemm_panel_width();

// gemm_ex(false, false, ...) with op(A) already packed by pack_a_ahead.
void gemm_packed_a(int64_t M, int64_t N, int64_t K, float alpha, const float* packed_a, const float* B, int64_t ldb,
                   float beta, float* C, int64_t ldc, const GemmEpilogue& ep);
// What gemm_rows_b multiplies, as one thread sees it: op(A) packed by
// pack_a_ahead, and B given row by row, B[k][j] = rows[k][j] anded bitwise with
// keep[k][j] (all ones keeps the element, 0 gives +0).
struct RowsOperands {
    const float* packed_a;
    const float* const* rows;
    const uint32_t* const* keep;
};
// C = epilogue(alpha * op(A) * B + beta * C) with B never stored. Each row of B
// must be readable up to N rounded up to whole panels (gemm_panel_width());
// what lies past N is never stored to C. The AVX-512 micro-kernel reads the rows
// itself, the others get a panel filled from them right before use. An implicit
// GEMM: the convolutions point the rows into the image (shifted planes), so
// im2col is never written. Threads split the (panel, row tile) pairs by cost;
// `operands` runs once on each thread that takes part, inside the parallel
// region (its own parallel_for calls run inline), and may return storage of
// that thread: then no thread reads data another wrote for this call, which is
// what a small threaded GEMM (one image) waits on where moving cache lines
// between cores is slow. Every thread's operands must hold the same values.
void gemm_rows_b(int64_t M, int64_t N, int64_t K, float alpha, const std::function<RowsOperands()>& operands,
                 float beta, float* C, int64_t ldc, const GemmEpilogue& ep);

// True when a C of M x N takes gemm_ex's packed, blocked loop whatever op(A) is:
// more than four rows and columns (fewer may take an unpacked path) and not
// computed as C^T (few columns). gemm_packed_a and gemm_rows_b take only such shapes.
bool gemm_packs(int64_t M, int64_t N);

enum class GemmIsa { Scalar, Avx2, Avx512 };

// Whether this build and this CPU can run `isa` (Scalar always can).
bool gemm_isa_available(GemmIsa isa);
// Forces later GEMMs onto `isa`; gb::Error when it is not available.
void set_gemm_isa(GemmIsa isa);
GemmIsa gemm_isa();
const char* gemm_isa_name(GemmIsa isa);
// The measured peak of gemm_isa()'s multiply-adds on `threads` threads at once
// (each its own std::thread running a loop of independent FMAs on full
// registers, best of three runs of about 50 ms): the ceiling a GEMM's GFLOP/s
// is held against.
double fma_peak_gflops(int threads);

}  // namespace gb::kernels::cpu
