// Softmax-family element math shared by the CPU and CUDA backends. Rows are
// shifted by their maximum before exponentiating so exp never overflows:
// log softmax(x)_j = (x_j - max) - log sum_k exp(x_k - max).
#pragma once

#include "../../core/hd.h"

namespace gb::kernels {

// log softmax of one element from the row maximum and log sum_k exp(x_k - max).
// x - max is computed first: it is exact for nearby values, so large logits
// (|x| ~ 1e4) keep full precision in the result.
GB_HD inline float log_softmax_value(float x, float row_max, float log_sum_exp_shifted) {
    return (x - row_max) - log_sum_exp_shifted;
}

// Cross-entropy gradient for one logit: dloss * (p - [j == label]).
GB_HD inline float cross_entropy_grad(float prob, bool is_label, float dloss) {
    return dloss * (prob - (is_label ? 1.f : 0.f));
}

}  // namespace gb::kernels
