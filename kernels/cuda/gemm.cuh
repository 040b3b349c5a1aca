// GEMM of the CUDA backend: cuBLAS (default) or the hand-written tiled kernel.
// cuBLAS is column-major; a row-major C = op(A) op(B) is the column-major
// C^T = op(B)^T op(A)^T, so the call swaps the operands (and M with N) and
// keeps each operand's transpose flag: row-major X with stride ld is
// column-major X^T with the same ld. The emulator's cublasSgemm checks this.
#pragma once

#include <algorithm>

#include "cuda_backend.h"
#include "tiled_gemm.cuh"

GB_GPU_BEGIN

cublasHandle_t CudaBackend::blas() {
    if (!blas_) {
        const cublasStatus_t st = cublasCreate(&blas_);
        GB_CHECK(st == CUBLAS_STATUS_SUCCESS, "cublasCreate failed on cuda:", device_, ": ", cublasGetStatusString(st));
    }
    return blas_;
}

void CudaBackend::gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                       int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    select_device();
    if (gemm_algo_ == GemmAlgo::Tiled) {
        tiled_sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    constexpr int64_t kMax = 0x7fffffff;
    GB_CHECK(M <= kMax && N <= kMax && K <= kMax && lda <= kMax && ldb <= kMax && ldc <= kMax, "gemm ", M, "x", N,
             "x", K, ": cuBLAS takes 32-bit sizes");
    // Column-major leading dimensions must be at least the stored row length, even when K == 0.
    const int64_t ld_b = std::max<int64_t>(ldb, trans_b ? std::max<int64_t>(K, 1) : N);
    const int64_t ld_a = std::max<int64_t>(lda, trans_a ? M : std::max<int64_t>(K, 1));
    auto i = [](int64_t v) { return static_cast<int>(v); };
    const cublasStatus_t st = cublasSgemm(blas(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                          trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, i(N), i(M), i(K), &alpha, B, i(ld_b), A,
                                          i(ld_a), &beta, C, i(ldc));
    GB_CHECK(st == CUBLAS_STATUS_SUCCESS, "cublasSgemm (", M, "x", N, "x", K, ") failed: ", cublasGetStatusString(st));
}

// Batches of the same product (the im2col convolution's images): one
// cublasSgemmStridedBatched call, or the tiled kernel with the batch as blockIdx.z.
void CudaBackend::gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
                               int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b, float* C,
                               int64_t ldc, int64_t stride_c, int64_t batch) {
    if (M <= 0 || N <= 0 || batch <= 0) return;
    if (gemm_algo_ == GemmAlgo::Tiled) {
        launch_tiled_gemm(GemmShape{M, N, K, ldc, stride_c}, 1.f, dense_operand(A, M, lda, !trans_a, stride_a),
                          dense_operand(B, N, ldb, trans_b, stride_b), 0.f, C, batch);
        return;
    }
    constexpr int64_t kMax = 0x7fffffff;
    GB_CHECK(M <= kMax && N <= kMax && K <= kMax && batch <= kMax, "batched gemm ", batch, " x ", M, "x", N, "x", K,
             ": cuBLAS takes 32-bit sizes");
    const float one = 1.f, zero = 0.f;
    auto i = [](int64_t v) { return static_cast<int>(v); };
    const cublasStatus_t st = cublasSgemmStridedBatched(
        blas(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, i(N), i(M), i(K), &one, B,
        i(ldb), stride_b, A, i(lda), stride_a, &zero, C, i(ldc), stride_c, i(batch));
    GB_CHECK(st == CUBLAS_STATUS_SUCCESS, "cublasSgemmStridedBatched (", batch, " x ", M, "x", N, "x", K,
             ") failed: ", cublasGetStatusString(st));
}

GB_GPU_END
