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

#include "kernels/backend.h"
#include "kernels/cuda/compat.cuh"

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

    void fill(int64_t n, float value, float* out) override;
    void copy(int64_t n, const float* x, float* out) override;

    void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc) override;

    void conv2d_forward(const Conv2dGeom& g, const float* x, const float* w, const float* bias, float* y) override;
    void conv2d_backward_data(const Conv2dGeom& g, const float* dy, const float* w, float* dx) override;
    void conv2d_backward_weight(const Conv2dGeom& g, const float* x, const float* dy, float* dw,
                                float* dbias) override;

    void maxpool2d_forward(const Pool2dGeom& g, const float* x, float* y, int32_t* indices) override;
    void maxpool2d_backward(const Pool2dGeom& g, const float* dy, const int32_t* indices, float* dx) override;
    void avgpool2d_forward(const Pool2dGeom& g, const float* x, float* y) override;
    void avgpool2d_backward(const Pool2dGeom& g, const float* dy, float* dx) override;
    void adaptive_avgpool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q, const float* x,
                                    float* y) override;
    void adaptive_avgpool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q, const float* dy,
                                     float* dx) override;

    void bias_add(int64_t outer, int64_t channels, int64_t inner, const float* bias, float* y) override;
    void bias_grad(int64_t outer, int64_t channels, int64_t inner, const float* dy, float* dbias) override;

    void relu_forward(int64_t n, const float* x, float* y) override;
    void relu_backward(int64_t n, const float* x, const float* dy, float* dx) override;
    void clamp(int64_t n, float lo, float hi, const float* x, float* out) override;
    void lrp_divide(int64_t n, float eps, const float* r, const float* z, float* out) override;
    void lrp_mask_sign(int64_t n, int sign, const float* z, const float* r, float* out) override;
    void add(int64_t n, const float* a, const float* b, float* out) override;
    void sub(int64_t n, const float* a, const float* b, float* out) override;
    void mul(int64_t n, const float* a, const float* b, float* out) override;
    void scale(int64_t n, float alpha, const float* x, float* out) override;
    void axpy(int64_t n, float alpha, const float* x, float* y) override;

    void sum_dim(int64_t outer, int64_t reduce, int64_t inner, const float* x, float* out) override;
    void broadcast_dim(int64_t outer, int64_t reduce, int64_t inner, float alpha, const float* g,
                       float* out) override;

    void softmax_forward(int64_t rows, int64_t cols, const float* x, float* y) override;
    void log_softmax_forward(int64_t rows, int64_t cols, const float* x, float* y) override;
    void softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx) override;
    void log_softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx) override;
    void cross_entropy_forward(int64_t rows, int64_t cols, const float* logits, const int32_t* labels, float* loss,
                               float* probs) override;
    void cross_entropy_backward(int64_t rows, int64_t cols, const float* probs, const int32_t* labels,
                                const float* dloss, float* dlogits) override;

    void batchnorm_forward_train(int64_t N, int64_t C, int64_t HW, const float* x, const float* gamma,
                                 const float* beta, float eps, float momentum, float* running_mean,
                                 float* running_var, float* y, float* save_mean, float* save_invstd) override;
    void batchnorm_forward_eval(int64_t N, int64_t C, int64_t HW, const float* x, const float* gamma,
                                const float* beta, const float* running_mean, const float* running_var, float eps,
                                float* y) override;
    void batchnorm_backward(int64_t N, int64_t C, int64_t HW, const float* x, const float* dy, const float* gamma,
                            const float* mean, const float* invstd, bool training, float* dx, float* dgamma,
                            float* dbeta) override;

    void dropout_forward(int64_t n, float p, uint64_t seed, uint64_t offset, const float* x, float* y,
                         float* mask) override;

    void sgd_step(int64_t n, const SgdParams& p, bool first, float* param, const float* grad,
                  float* momentum_buf) override;
    void adam_step(int64_t n, const AdamParams& p, int64_t step, float* param, const float* grad, float* m,
                   float* v) override;

    void resize_bilinear_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, bool align_corners,
                                 const float* x, float* y) override;
    void resize_bilinear_backward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, bool align_corners,
                                  const float* dy, float* dx) override;

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
