// An NT product whose B operand is given row by row, with no packing:
//   C[i * ldc + j] = beta * C[i * ldc + j] + sum_{t < n} A[i * lda + t] * rows[j][t]
// for i < M, j < N (beta == 0 never reads C). Each element is a dot product
// along contiguous memory, so neither operand is transposed or copied; the rows
// may be overlapping shifted views of one buffer. conv.cpp computes the weight
// gradient of stride-1 convolutions with it (rows = shifted views of the
// zero-padded input, A = the output gradient laid out on the padded width).
#pragma once

#include <cstdint>

namespace gb::kernels::cpu {

using RowDotFn = void (*)(int64_t M, int64_t N, int64_t n, const float* A, int64_t lda, const float* const* rows,
                          float beta, float* C, int64_t ldc);

// The AVX-512 implementation (row_dot_avx512.cpp), or null when the build has none.
RowDotFn avx512_row_dot();

}  // namespace gb::kernels::cpu
