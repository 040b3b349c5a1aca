// What the packed SGEMM driver (gemm.cpp) needs from one instruction set: the
// register-tile shape, the blocking sizes that suit it, the packing routines
// and the micro-kernel. Each ISA implements this in its own file compiled for
// that ISA (gemm_avx512.cpp, gemm_avx2.cpp, gemm_scalar.cpp).
#pragma once

#include <cstdint>

namespace gb::kernels::cpu {

// op(X) of a row-major operand: element (r, c) is p[r * ld + c], or p[c * ld + r] when trans.
struct GemmOperand {
    const float* p;
    int64_t ld;
    bool trans;
    const float* at(int64_t r, int64_t c) const { return trans ? p + c * ld + r : p + r * ld + c; }
};

// How a finished register tile is written to C: c = alpha * acc + beta * c
// (beta == 0: C is not read), then + row_bias[i] + col_bias[j] and ReLU where given.
// The bias pointers are already offset to the tile's first row / column.
// Element (i, j) of the tile is c[i * ldc + j], or c[j * ldc + i] when transposed
// (the driver solves C^T = op(B)^T op(A)^T when C has very few columns).
struct TileStore {
    float alpha, beta;
    const float* row_bias;
    const float* col_bias;
    bool relu;
    bool transposed;
};

struct MicroKernel {
    int64_t mr, nr;      // register tile
    int64_t kc, mc, nc;  // packed block depth, rows of a packed A block, columns of a packed B block
    // Rows [0, mc) x depth [0, kc) of op(A) into mr-row panels: out[(i / mr) * kc * mr + k * mr + i % mr].
    void (*pack_a)(const GemmOperand& a, int64_t mc, int64_t kc, float* out);
    // Depth [0, kc) x columns [0, nc) of op(B) into nr-column panels, k-major, zero past nc.
    void (*pack_b)(const GemmOperand& b, int64_t kc, int64_t nc, float* out);
    // The m x n tile (m <= mr, n <= nr) of the product of one A panel and one B panel, stored by `s`.
    void (*run)(int64_t kc, const float* a, const float* b, int64_t m, int64_t n, float* c, int64_t ldc,
                const TileStore& s);
    // run() with B's panel given row by row: row k is b_rows[k][col, col + nr) anded
    // bitwise with b_keep[k][col, col + nr) (all ones or 0 per column), read
    // unaligned. Null where the instruction set has none; the driver then fills a
    // panel from the rows.
    void (*run_rows)(int64_t kc, const float* a, const float* const* b_rows, const uint32_t* const* b_keep,
                     int64_t col, int64_t m, int64_t n, float* c, int64_t ldc, const TileStore& s);
    // `iters` rounds of independent multiply-adds on full registers, nothing
    // else (the instruction set's peak, fma_peak_gflops); returns the flops done.
    double (*fma_loop)(int64_t iters);
};

// Null when the build did not compile that instruction set (non-x86 targets).
const MicroKernel* avx512_micro_kernel();
const MicroKernel* avx2_micro_kernel();
const MicroKernel& scalar_micro_kernel();

}  // namespace gb::kernels::cpu
