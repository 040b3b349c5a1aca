// The one list of compute primitives. kernels/cpu/ implements every one;
// kernels/cuda/ (CUDA builds) implements the same list. All pointers are in
// the backend's device memory, tensors are contiguous row-major (NCHW), and an
// output is overwritten unless its comment says "accumulates". Outputs never
// alias inputs (in/out arguments such as axpy's y are the only shared ones).
// Arguments are validated by the caller (layers/, autograd/), so kernels never
// throw on the hot path; `geometry.h` validates window shapes.
#pragma once

#include <cstdint>
#include <string>

#include "core/device.h"
#include "kernels/geometry.h"

namespace gb::kernels {

// SGD with momentum/dampening/nesterov and L2 weight decay, PyTorch's torch.optim.SGD semantics.
struct SgdParams {
    float lr = 0.01f, momentum = 0.f, dampening = 0.f, weight_decay = 0.f;
    bool nesterov = false;
};

// Adam (L2 weight decay added to the gradient) or AdamW (decoupled decay), PyTorch semantics.
struct AdamParams {
    float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.f;
    bool decoupled = false;  // true: AdamW
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual Device device() const = 0;
    virtual std::string name() const = 0;

    // ---- memory -----------------------------------------------------------
    virtual void fill(int64_t n, float value, float* out) = 0;
    virtual void copy(int64_t n, const float* x, float* out) = 0;

    // ---- GEMM: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C ----------
    // Row-major. op(A) = A (stored M x K, row stride lda) or A^T (stored K x M).
    // op(B) = B (stored K x N, row stride ldb) or B^T (stored N x K). beta = 0 ignores C's contents.
    virtual void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                      int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) = 0;

    // ---- convolution (groups = 1); w [K,C,R,S], bias [K] or nullptr --------
    virtual void conv2d_forward(const Conv2dGeom& g, const float* x, const float* w, const float* bias,
                                float* y) = 0;
    // y = max(0, conv2d_forward(...)): the ReLU that follows a convolution, for
    // callers that need no pre-activation (inference without a graph or hooks).
    // The CPU backend applies it in the GEMM's epilogue; this default runs a
    // separate in-place ReLU.
    virtual void conv2d_forward_relu(const Conv2dGeom& g, const float* x, const float* w, const float* bias,
                                     float* y) {
        conv2d_forward(g, x, w, bias, y);
        relu_forward(g.y_numel(), y, y);
    }
    virtual void conv2d_backward_data(const Conv2dGeom& g, const float* dy, const float* w, float* dx) = 0;
    // One LRP term through a convolution in a single pass per image:
    //   out = x * conv2d_backward_data(lrp_divide(r, conv2d_forward(x, w, bias), eps), w),
    // bit for bit what those four calls give. Returns false (out untouched) where
    // the backend has no such pass; the caller then runs the four.
    virtual bool conv2d_lrp_term(const Conv2dGeom& g, const float* x, const float* w, const float* bias,
                                 const float* r, float eps, float* out) {
        (void)g, (void)x, (void)w, (void)bias, (void)r, (void)eps, (void)out;
        return false;
    }
    // dw [K,C,R,S]; dbias [K] or nullptr.
    virtual void conv2d_backward_weight(const Conv2dGeom& g, const float* x, const float* dy, float* dw,
                                        float* dbias) = 0;

    // ---- pooling -------------------------------------------------------------
    // Max pooling; padding counts as -infinity. indices[n,c,p,q] = h*W + w of the
    // first maximum in row-major window order (PyTorch's choice).
    virtual void maxpool2d_forward(const Pool2dGeom& g, const float* x, float* y, int32_t* indices) = 0;
    virtual void maxpool2d_backward(const Pool2dGeom& g, const float* dy, const int32_t* indices, float* dx) = 0;
    // Average pooling; the divisor is kh*kw with count_include_pad, else the real taps.
    virtual void avgpool2d_forward(const Pool2dGeom& g, const float* x, float* y) = 0;
    virtual void avgpool2d_backward(const Pool2dGeom& g, const float* dy, float* dx) = 0;
    // Adaptive average pooling [planes,H,W] -> [planes,P,Q]: window i spans
    // [floor(i*H/P), ceil((i+1)*H/P)) (PyTorch's rule).
    virtual void adaptive_avgpool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q,
                                            const float* x, float* y) = 0;
    virtual void adaptive_avgpool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q,
                                             const float* dy, float* dx) = 0;

    // ---- per-channel bias: tensors viewed as [outer, channels, inner] --------
    virtual void bias_add(int64_t outer, int64_t channels, int64_t inner, const float* bias, float* y) = 0;  // accumulates
    virtual void bias_grad(int64_t outer, int64_t channels, int64_t inner, const float* dy, float* dbias) = 0;

    // ---- element-wise --------------------------------------------------------
    virtual void relu_forward(int64_t n, const float* x, float* y) = 0;
    // dx = dy where x > 0, else 0 (derivative at 0 is 0). `x` may be the ReLU's output.
    virtual void relu_backward(int64_t n, const float* x, const float* dy, float* dx) = 0;
    virtual void add(int64_t n, const float* a, const float* b, float* out) = 0;
    virtual void sub(int64_t n, const float* a, const float* b, float* out) = 0;
    virtual void mul(int64_t n, const float* a, const float* b, float* out) = 0;
    virtual void scale(int64_t n, float alpha, const float* x, float* out) = 0;
    virtual void axpy(int64_t n, float alpha, const float* x, float* y) = 0;  // y += alpha * x (accumulates)

    // out = min(max(x, lo), hi); +-infinity bounds give the positive/negative parts.
    virtual void clamp(int64_t n, float lo, float hi, const float* x, float* out) = 0;

    // ---- LRP helpers (kernels/common/lrp.h) ------------------------------------
    // out = r / (z + eps * sign(z)), sign(0) = +1; 0 where that denominator is 0.
    virtual void lrp_divide(int64_t n, float eps, const float* r, const float* z, float* out) = 0;
    // out = r where sign * z > 0 (sign = +1 or -1), else 0.
    virtual void lrp_mask_sign(int64_t n, int sign, const float* z, const float* r, float* out) = 0;

    // ---- reductions: x viewed as [outer, reduce, inner] -> out [outer, inner] --
    virtual void sum_dim(int64_t outer, int64_t reduce, int64_t inner, const float* x, float* out) = 0;
    // Backward of a sum: out[o, r, i] = alpha * g[o, i].
    virtual void broadcast_dim(int64_t outer, int64_t reduce, int64_t inner, float alpha, const float* g,
                               float* out) = 0;

    // ---- softmax family over the last axis of [rows, cols] -------------------
    virtual void softmax_forward(int64_t rows, int64_t cols, const float* x, float* y) = 0;
    virtual void log_softmax_forward(int64_t rows, int64_t cols, const float* x, float* y) = 0;
    // dx = y * (dy - sum_j dy_j y_j)
    virtual void softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx) = 0;
    // y = log_softmax output; dx = dy - exp(y) * sum_j dy_j
    virtual void log_softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx) = 0;
    // loss[r] = -log softmax(logits[r])[labels[r]]; probs = softmax(logits). Labels are in range (checked by caller).
    virtual void cross_entropy_forward(int64_t rows, int64_t cols, const float* logits, const int32_t* labels,
                                       float* loss, float* probs) = 0;
    // dlogits[r, j] = dloss[r] * (probs[r, j] - [j == labels[r]])
    virtual void cross_entropy_backward(int64_t rows, int64_t cols, const float* probs, const int32_t* labels,
                                        const float* dloss, float* dlogits) = 0;

    // ---- batch normalisation over [N, C, HW] per channel ----------------------
    // Training: batch statistics (biased variance for normalising); running
    // stats <- (1-momentum)*running + momentum*batch (unbiased variance).
    // Saves mean and 1/sqrt(var+eps) per channel for the backward.
    virtual void batchnorm_forward_train(int64_t N, int64_t C, int64_t HW, const float* x, const float* gamma,
                                         const float* beta, float eps, float momentum, float* running_mean,
                                         float* running_var, float* y, float* save_mean, float* save_invstd) = 0;
    virtual void batchnorm_forward_eval(int64_t N, int64_t C, int64_t HW, const float* x, const float* gamma,
                                        const float* beta, const float* running_mean, const float* running_var,
                                        float eps, float* y) = 0;
    // training = true: through the batch statistics (save_mean/save_invstd from the
    // forward). training = false: the statistics are constants (mean/invstd from running).
    // dgamma/dbeta overwritten.
    virtual void batchnorm_backward(int64_t N, int64_t C, int64_t HW, const float* x, const float* dy,
                                    const float* gamma, const float* mean, const float* invstd, bool training,
                                    float* dx, float* dgamma, float* dbeta) = 0;

    // ---- dropout ---------------------------------------------------------------
    // mask[i] = (u_i >= p) / (1 - p) with u_i = philox_uniform_at(seed, offset, i); y = x * mask.
    virtual void dropout_forward(int64_t n, float p, uint64_t seed, uint64_t offset, const float* x, float* y,
                                 float* mask) = 0;

    // ---- optimizer steps (in place on param and state) -------------------------
    // `first` marks the first step (momentum buffer = gradient, as in PyTorch).
    virtual void sgd_step(int64_t n, const SgdParams& p, bool first, float* param, const float* grad,
                          float* momentum_buf) = 0;
    // `step` counts from 1 (bias correction).
    virtual void adam_step(int64_t n, const AdamParams& p, int64_t step, float* param, const float* grad, float* m,
                           float* v) = 0;

    // ---- bilinear resize of [planes, H, W] -> [planes, OH, OW] -----------------
    // align_corners = false: half-pixel centres (PyTorch F.interpolate, OpenCV INTER_LINEAR);
    // true: corners aligned (nn.UpsamplingBilinear2d).
    virtual void resize_bilinear_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                         bool align_corners, const float* x, float* y) = 0;
    virtual void resize_bilinear_backward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                          bool align_corners, const float* dy, float* dx) = 0;
};

// The backend that computes on `device`. CPU always; CUDA raises gb::Error
// when this build or machine has none.
Backend& backend_for(Device device);
Backend& cpu_backend();

}  // namespace gb::kernels
