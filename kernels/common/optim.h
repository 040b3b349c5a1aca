// Per-element optimizer updates shared by the CPU and CUDA backends,
// transcribed from PyTorch's torch.optim.SGD and torch.optim.Adam / AdamW
// (single-tensor "for-loop" implementations, amsgrad = maximize = False).
#pragma once

#include <math.h>

#include "../../core/hd.h"

namespace gb::kernels {

// torch.optim.SGD, one element:
//   g = grad + weight_decay * p
//   b = g (first step) or momentum * b + (1 - dampening) * g
//   g = g + momentum * b (nesterov) or b
//   p = p - lr * g
// With momentum == 0 the buffer is neither read nor written.
GB_HD inline void sgd_update(float& p, float grad, float* buf, float lr, float momentum, float dampening,
                             float weight_decay, bool nesterov, bool first) {
    float g = grad;
    if (weight_decay != 0.f) g += weight_decay * p;
    if (momentum != 0.f) {
        const float b = first ? g : momentum * *buf + (1.f - dampening) * g;
        *buf = b;
        g = nesterov ? g + momentum * b : b;
    }
    p -= lr * g;
}

// Step-dependent scalars of Adam: step_size = lr / (1 - beta1^t) and
// 1 / sqrt(1 - beta2^t). PyTorch computes the corrections in double precision.
struct AdamScalars {
    float step_size;
    float inv_bc2_sqrt;
};

GB_HD inline AdamScalars adam_scalars(float lr, float beta1, float beta2, long long step) {
    const double bc1 = 1.0 - pow(static_cast<double>(beta1), static_cast<double>(step));
    const double bc2 = 1.0 - pow(static_cast<double>(beta2), static_cast<double>(step));
    return AdamScalars{static_cast<float>(lr / bc1), static_cast<float>(1.0 / sqrt(bc2))};
}

// torch.optim.Adam (decoupled = false) / AdamW (decoupled = true), one element:
//   Adam:  g = g + wd * p          AdamW: p = p * (1 - lr * wd)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g^2
//   p = p - lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps),  bc_i = 1 - beta_i^step
// which is p -= lr * mhat / (sqrt(vhat) + eps) evaluated in PyTorch's order.
GB_HD inline void adam_update(float& p, float grad, float& m, float& v, float lr, float beta1, float beta2, float eps,
                              float weight_decay, bool decoupled, AdamScalars s) {
    float g = grad;
    if (weight_decay != 0.f) {
        if (decoupled)
            p *= 1.f - lr * weight_decay;
        else
            g += weight_decay * p;
    }
    m = beta1 * m + (1.f - beta1) * g;
    v = beta2 * v + (1.f - beta2) * g * g;
    const float denom = sqrtf(v) * s.inv_bc2_sqrt + eps;
    p -= s.step_size * (m / denom);
}

}  // namespace gb::kernels
