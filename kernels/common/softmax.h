// Softmax-family element math shared by the CPU and CUDA backends. Rows are
// shifted by their maximum before exponentiating so exp never overflows:
// log sum_j exp(x_j) = max + log sum_j exp(x_j - max).
#pragma once

#include <math.h>

#include "core/hd.h"

namespace gb::kernels {

// log sum_j exp(x_j) from the row maximum and sum_j exp(x_j - max).
GB_HD inline float log_sum_exp(float row_max, float sum_exp_shifted) { return row_max + logf(sum_exp_shifted); }

// Cross-entropy gradient for one logit: dloss * (p - [j == label]).
GB_HD inline float cross_entropy_grad(float prob, bool is_label, float dloss) {
    return dloss * (prob - (is_label ? 1.f : 0.f));
}

}  // namespace gb::kernels
