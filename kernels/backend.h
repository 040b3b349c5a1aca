// The compute backend interface: one virtual method per primitive of
// kernels/ops.def (the one list, with each primitive's contract), plus the fused
// forms that have a default. kernels/cpu/ implements every primitive;
// kernels/cuda/ (CUDA builds, and the emulated CUDA device of the tests)
// implements the same list. backend_for() (kernels/registry.cpp) finds the
// backend of a device among those registered (kernels/registry.h).
#pragma once

#include <cstdint>
#include <string>

#include "../core/device.h"
#include "geometry.h"

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

    // Every primitive of kernels/ops.def, with its contract there.
#define GB_OP(ret, name, params) virtual ret name params = 0;
#include "ops.def"
#undef GB_OP

    // ---- fused forms with a default (a backend overrides them by hand where it fuses) ----
    // y = max(0, conv2d_forward(...)): the ReLU that follows a convolution, for
    // callers that need no pre-activation (inference without a graph or hooks).
    // The CPU backend applies it in the GEMM's epilogue; this default runs a
    // separate in-place ReLU.
    virtual void conv2d_forward_relu(const Conv2dGeom& g, const float* x, const float* w, const float* bias,
                                     float* y) {
        conv2d_forward(g, x, w, bias, y);
        relu_forward(g.y_numel(), y, y);
    }
    // One LRP term through a convolution in a single pass per image:
    //   out = x * conv2d_backward_data(lrp_divide(r, conv2d_forward(x, w, bias), eps), w),
    // bit for bit what those four calls give. Returns false (out untouched) where
    // the backend has no such pass; the caller then runs the four.
    // z_known, when not null, is the forward z (not computed again); else, when
    // z_keep is not null, the pass writes z there.
    virtual bool conv2d_lrp_term(const Conv2dGeom& g, const float* x, const float* w, const float* bias,
                                 const float* r, float eps, float* out, const float* z_known, float* z_keep) {
        (void)g, (void)x, (void)w, (void)bias, (void)r, (void)eps, (void)out, (void)z_known, (void)z_keep;
        return false;
    }
};

// The backend that computes on `device`. CPU always; CUDA raises gb::Error
// when this build or machine has none.
Backend& backend_for(Device device);
Backend& cpu_backend();

}  // namespace gb::kernels
