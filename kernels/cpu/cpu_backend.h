// The CPU backend: every primitive of kernels/backend.h on host memory, threaded
// with gb::parallel_for. Private to kernels/cpu; the rest of glassbox reaches it
// through cpu_backend() / backend_for() (registry.cpp). Definitions are split over
// gemm.cpp, conv.cpp, pool.cpp, elementwise.cpp, reduce.cpp, softmax.cpp,
// batchnorm.cpp, dropout.cpp, optim.cpp and resize.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/backend.h"

namespace gb::kernels {

class CpuBackend final : public Backend {
public:
    Device device() const override { return Device::cpu(); }
    std::string name() const override { return "cpu"; }

    void fill(int64_t n, float value, float* out) override;
    void copy(int64_t n, const float* x, float* out) override;

    void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc) override;

    void conv2d_forward(const Conv2dGeom& g, const float* x, const float* w, const float* bias, float* y) override;
    void conv2d_forward_relu(const Conv2dGeom& g, const float* x, const float* w, const float* bias,
                             float* y) override;
    void conv2d_backward_data(const Conv2dGeom& g, const float* dy, const float* w, float* dx) override;
    bool conv2d_lrp_term(const Conv2dGeom& g, const float* x, const float* w, const float* bias, const float* r,
                         float eps, float* out) override;
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
};

namespace cpu {

// Grow-only scratch buffers of the calling thread, one per slot, so hot paths
// allocate only when a call needs more than any earlier call on that thread.
enum class Scratch { GemmA, GemmB, GemmT, Col, Row, Weight, WeightT, Partial, Gather, Count };
float* scratch(Scratch slot, size_t count);
// The same, its start rounded up to 64 bytes (the micro-kernels load packed panels aligned).
float* aligned_scratch(Scratch slot, int64_t count);

// Element counts per parallel_for chunk below which splitting does not pay.
constexpr int64_t kElementGrain = 1 << 15;

}  // namespace cpu

}  // namespace gb::kernels
