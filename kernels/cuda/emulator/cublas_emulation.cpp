// The emulated cublasSgemm and cublasSgemmStridedBatched (column-major,
// cuBLAS's argument checks), plain loops with float products accumulated in double.
#include "kernels/cuda/emulator/cuda_emulation.h"

#include <algorithm>

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
    static gb_emu_cublas_context context;
    *handle = &context;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t) { return CUBLAS_STATUS_SUCCESS; }

const char* cublasGetStatusString(cublasStatus_t status) {
    return status == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_INVALID_VALUE";
}

// C (m x n, column-major) = alpha * op(A) * op(B) + beta * C.
cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                           const float* beta, float* C, int ldc) {
    const int a_rows = transa == CUBLAS_OP_N ? m : k, b_rows = transb == CUBLAS_OP_N ? k : n;
    if (!handle || m < 0 || n < 0 || k < 0 || lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) ||
        ldc < std::max(1, m))
        return CUBLAS_STATUS_INVALID_VALUE;
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) {
            double s = 0;
            for (int p = 0; p < k; ++p) {
                const float a = transa == CUBLAS_OP_N ? A[i + static_cast<int64_t>(p) * lda]
                                                      : A[p + static_cast<int64_t>(i) * lda];
                const float b = transb == CUBLAS_OP_N ? B[p + static_cast<int64_t>(j) * ldb]
                                                      : B[j + static_cast<int64_t>(p) * ldb];
                s += static_cast<double>(a) * b;
            }
            float& c = C[i + static_cast<int64_t>(j) * ldc];
            c = *beta == 0.f ? static_cast<float>(*alpha * s) : static_cast<float>(*alpha * s + *beta * c);
        }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const float* alpha, const float* A, int lda,
                                         long long stride_a, const float* B, int ldb, long long stride_b,
                                         const float* beta, float* C, int ldc, long long stride_c, int batch) {
    if (batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    for (int b = 0; b < batch; ++b) {
        const cublasStatus_t st = cublasSgemm(handle, transa, transb, m, n, k, alpha, A + b * stride_a, lda,
                                              B + b * stride_b, ldb, beta, C + b * stride_c, ldc);
        if (st != CUBLAS_STATUS_SUCCESS) return st;
    }
    return CUBLAS_STATUS_SUCCESS;
}
