// Element-wise kernels: one thread per element in a grid-stride loop, the
// element math from kernels/common/ (shared with the CPU backend). Each
// operation is a small functor run by for_each_kernel; the backend methods
// below are its launchers.
#pragma once

#include "../../core/philox.h"
#include "../common/activation.h"
#include "../common/dropout.h"
#include "../common/lrp.h"
#include "../common/optim.h"
#include "cuda_backend.h"

GB_GPU_BEGIN

// op(i) for every i in [0, n).
template <typename Op>
__global__ void for_each_kernel(int64_t n, Op op) {
    const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) op(i);
}

template <typename Op>
void for_each(int64_t n, Op op) {
    if (n > 0) launch(for_each_kernel<Op>, dim3(blocks_for(n)), dim3(kThreads), 0, n, op);
}

struct FillOp {
    float value;
    float* out;
    __device__ void operator()(int64_t i) const { out[i] = value; }
};
struct CopyOp {
    const float* x;
    float* out;
    __device__ void operator()(int64_t i) const { out[i] = x[i]; }
};
struct ReluOp {
    const float* x;
    float* y;
    __device__ void operator()(int64_t i) const { y[i] = relu(x[i]); }
};
struct ReluBackwardOp {
    const float *x, *dy;
    float* dx;
    __device__ void operator()(int64_t i) const { dx[i] = kernels::relu_backward(x[i], dy[i]); }
};
struct ClampOp {
    float lo, hi;
    const float* x;
    float* out;
    __device__ void operator()(int64_t i) const { out[i] = clamp_value(x[i], lo, hi); }
};
struct LrpDivideOp {
    float eps;
    const float *r, *z;
    float* out;
    __device__ void operator()(int64_t i) const { out[i] = kernels::lrp_divide(r[i], z[i], eps); }
};
struct LrpMaskSignOp {
    int sign;
    const float *z, *r;
    float* out;
    __device__ void operator()(int64_t i) const { out[i] = kernels::lrp_mask_sign(r[i], z[i], sign); }
};
struct AddOp {
    const float *a, *b;
    float* out;
    __device__ void operator()(int64_t i) const { out[i] = a[i] + b[i]; }
};
struct SubOp {
    const float *a, *b;
    float* out;
    __device__ void operator()(int64_t i) const { out[i] = a[i] - b[i]; }
};
struct MulOp {
    const float *a, *b;
    float* out;
    __device__ void operator()(int64_t i) const { out[i] = a[i] * b[i]; }
};
struct ScaleOp {
    float alpha;
    const float* x;
    float* out;
    __device__ void operator()(int64_t i) const { out[i] = alpha * x[i]; }
};
struct AxpyOp {
    float alpha;
    const float* x;
    float* y;
    __device__ void operator()(int64_t i) const { y[i] += alpha * x[i]; }
};
// y[o, c, i] += bias[c] over [outer, channels, inner].
struct BiasAddOp {
    int64_t channels, inner;
    const float* bias;
    float* y;
    __device__ void operator()(int64_t i) const { y[i] += bias[(i / inner) % channels]; }
};
// Draw i of Philox stream (seed, offset), the same draw as the CPU backend's.
struct DropoutOp {
    float p, scale;
    uint64_t seed, offset;
    const float* x;
    float *y, *mask;
    __device__ void operator()(int64_t i) const {
        const float m = dropout_mask(philox_uniform_at(seed, offset, static_cast<uint64_t>(i)), p, scale);
        mask[i] = m;
        y[i] = x[i] * m;
    }
};
struct SgdOp {
    SgdParams p;
    bool first;
    float* param;
    const float* grad;
    float* buf;
    __device__ void operator()(int64_t i) const {
        sgd_update(param[i], grad[i], p.momentum != 0.f ? buf + i : nullptr, p.lr, p.momentum, p.dampening,
                   p.weight_decay, p.nesterov, first);
    }
};
struct AdamOp {
    AdamParams p;
    AdamScalars s;
    float* param;
    const float* grad;
    float *m, *v;
    __device__ void operator()(int64_t i) const {
        adam_update(param[i], grad[i], m[i], v[i], p.lr, p.beta1, p.beta2, p.eps, p.weight_decay, p.decoupled, s);
    }
};

void CudaBackend::fill(int64_t n, float value, float* out) {
    select_device();
    for_each(n, FillOp{value, out});
}
void CudaBackend::copy(int64_t n, const float* x, float* out) {
    if (x == out) return;
    select_device();
    for_each(n, CopyOp{x, out});
}
void CudaBackend::relu_forward(int64_t n, const float* x, float* y) {
    select_device();
    for_each(n, ReluOp{x, y});
}
void CudaBackend::relu_backward(int64_t n, const float* x, const float* dy, float* dx) {
    select_device();
    for_each(n, ReluBackwardOp{x, dy, dx});
}
void CudaBackend::clamp(int64_t n, float lo, float hi, const float* x, float* out) {
    select_device();
    for_each(n, ClampOp{lo, hi, x, out});
}
void CudaBackend::lrp_divide(int64_t n, float eps, const float* r, const float* z, float* out) {
    select_device();
    for_each(n, LrpDivideOp{eps, r, z, out});
}
void CudaBackend::lrp_mask_sign(int64_t n, int sign, const float* z, const float* r, float* out) {
    select_device();
    for_each(n, LrpMaskSignOp{sign, z, r, out});
}
void CudaBackend::add(int64_t n, const float* a, const float* b, float* out) {
    select_device();
    for_each(n, AddOp{a, b, out});
}
void CudaBackend::sub(int64_t n, const float* a, const float* b, float* out) {
    select_device();
    for_each(n, SubOp{a, b, out});
}
void CudaBackend::mul(int64_t n, const float* a, const float* b, float* out) {
    select_device();
    for_each(n, MulOp{a, b, out});
}
void CudaBackend::scale(int64_t n, float alpha, const float* x, float* out) {
    select_device();
    for_each(n, ScaleOp{alpha, x, out});
}
void CudaBackend::axpy(int64_t n, float alpha, const float* x, float* y) {
    select_device();
    for_each(n, AxpyOp{alpha, x, y});
}
void CudaBackend::bias_add(int64_t outer, int64_t channels, int64_t inner, const float* bias, float* y) {
    select_device();
    for_each(outer * channels * inner, BiasAddOp{channels, inner, bias, y});
}
void CudaBackend::dropout_forward(int64_t n, float p, uint64_t seed, uint64_t offset, const float* x, float* y,
                                  float* mask) {
    select_device();
    for_each(n, DropoutOp{p, dropout_scale(p), seed, offset, x, y, mask});
}
void CudaBackend::sgd_step(int64_t n, const SgdParams& p, bool first, float* param, const float* grad,
                           float* momentum_buf) {
    select_device();
    for_each(n, SgdOp{p, first, param, grad, momentum_buf});
}
void CudaBackend::adam_step(int64_t n, const AdamParams& p, int64_t step, float* param, const float* grad, float* m,
                            float* v) {
    select_device();
    for_each(n, AdamOp{p, adam_scalars(p.lr, p.beta1, p.beta2, step), param, grad, m, v});
}

GB_GPU_END
