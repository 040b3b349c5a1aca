// The CUDA backend: every primitive of kernels/backend.h on device memory of one
// GPU. Hand-written kernels (kernels/cuda/*.cuh, each method beside its kernels)
// for everything but GEMM and convolution, which have run-time alternatives:
//   GEMM: cuBLAS (default) or the hand-written tiled SGEMM     (GB_CUDA_GEMM=cublas|tiled)
//   conv: cuDNN (default when built with GB_CUDNN), im2col + GEMM (default otherwise),
//         or the hand-written implicit-GEMM convolution         (GB_CUDA_CONV=cudnn|im2col|implicit)
// All work goes to the legacy default stream, in order; results are ready when
// a copy to the host returns. The same class compiles against the CUDA emulator
// (namespace gb::kernels::gpu::emulated) for the tests; see kernels/cuda/compat.cuh.
#pragma once

#include <string>

#include "../backend.h"
#include "compat.cuh"

GB_GPU_BEGIN

enum class GemmAlgo { Cublas, Tiled };
enum class ConvAlgo { Cudnn, Im2col, Implicit };

// Parses GB_CUDA_GEMM / GB_CUDA_CONV values; raises gb::Error naming the choices.
GemmAlgo parse_gemm_algo(const std::string& text);
ConvAlgo parse_conv_algo(const std::string& text);
bool cudnn_built();

class CudaBackend final : public Backend {
public:
    // Algorithms from GB_CUDA_GEMM / GB_CUDA_CONV when set, else the defaults above.
    explicit CudaBackend(int device);
    ~CudaBackend() override;
    CudaBackend(const CudaBackend&) = delete;
    CudaBackend& operator=(const CudaBackend&) = delete;

    Device device() const override;
    std::string name() const override { return "cuda"; }

    GemmAlgo gemm_algo() const { return gemm_algo_; }
    ConvAlgo conv_algo() const { return conv_algo_; }
    void set_gemm_algo(GemmAlgo a) { gemm_algo_ = a; }
    void set_conv_algo(ConvAlgo a);  // raises gb::Error for cuDNN in a build without it

    // Every primitive of kernels/ops.def; the fused forms keep Backend's defaults.
#define GB_OP(ret, name, params) ret name params override;
#include "../ops.def"
#undef GB_OP

private:
    void select_device() const;  // makes this backend's GPU current for the calling thread
    cublasHandle_t blas();       // created on first use
    // C[b] = op(A[b]) * op(B[b]) for b < batch, operand b at base + b * stride (stride 0: shared).
    void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                      int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b, float* C, int64_t ldc,
                      int64_t stride_c, int64_t batch);
    void conv_im2col_forward(const Conv2dGeom& g, const float* x, const float* w, float* y);
    void conv_im2col_backward_data(const Conv2dGeom& g, const float* dy, const float* w, float* dx);
    void conv_im2col_backward_weight(const Conv2dGeom& g, const float* x, const float* dy, float* dw);

    int device_;
    GemmAlgo gemm_algo_ = GemmAlgo::Cublas;
    ConvAlgo conv_algo_ = ConvAlgo::Im2col;
    cublasHandle_t blas_ = nullptr;
};

GB_GPU_END
