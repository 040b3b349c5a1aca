// Element math of layer-wise relevance propagation, shared by both backends.
// Stabiliser (Zennit's `stabilize`): z -> z + eps * sign(z) with sign(0) = +1,
// so a denominator never passes through zero; eps = 0 leaves z unchanged.
#pragma once

#include "../../core/hd.h"

namespace gb::kernels {

GB_HD inline float lrp_stabilize(float z, float eps) { return z + (z >= 0.f ? eps : -eps); }

// r / stabilize(z, eps); 0 where the stabilised denominator is exactly 0 (eps = 0, z = 0).
GB_HD inline float lrp_divide(float r, float z, float eps) {
    const float d = lrp_stabilize(z, eps);
    return d == 0.f ? 0.f : r / d;
}

// r where sign * z > 0, else 0 (Gamma's split of outputs by the sign of z).
GB_HD inline float lrp_mask_sign(float r, float z, int sign) { return (sign > 0 ? z > 0.f : z < 0.f) ? r : 0.f; }

GB_HD inline float clamp_value(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

}  // namespace gb::kernels
