// Batch-normalisation element math shared by the CPU and CUDA backends
// (PyTorch torch.nn.BatchNorm2d; Ioffe & Szegedy 2015 for the backward).
#pragma once

#include <math.h>

#include "../../core/hd.h"

namespace gb::kernels {

GB_HD inline float bn_invstd(float var, float eps) { return 1.f / sqrtf(var + eps); }

// running = (1 - momentum) * running + momentum * batch (PyTorch's momentum convention).
GB_HD inline float bn_running_update(float running, float batch, float momentum) {
    return (1.f - momentum) * running + momentum * batch;
}

// Unbiased variance from the biased one over n values: var * n / (n - 1).
// With n == 1 there is no unbiased estimate; the biased value (0) is returned.
GB_HD inline float bn_unbiased(float biased_var, long long n) {
    return n > 1 ? static_cast<float>(static_cast<double>(biased_var) * n / (n - 1)) : biased_var;
}

// Training backward, one element, through the batch statistics over M values:
//   dx = gamma * invstd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat))
//      = k * (dy - mean_dy - xhat * mean_dy_xhat),  k = gamma * invstd.
GB_HD inline float bn_backward_train(float dy, float xhat, float k, float mean_dy, float mean_dy_xhat) {
    return k * (dy - mean_dy - xhat * mean_dy_xhat);
}

}  // namespace gb::kernels
