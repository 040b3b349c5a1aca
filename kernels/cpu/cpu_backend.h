// The CPU backend: every primitive of kernels/ops.def on host memory, threaded
// with gb::parallel_for. Private to kernels/cpu; the rest of glassbox reaches it
// through cpu_backend() / backend_for() (registered in registry.cpp). Definitions
// are split over gemm.cpp, conv.cpp, pool.cpp, elementwise.cpp, reduce.cpp,
// softmax.cpp, batchnorm.cpp, dropout.cpp, optim.cpp, resize.cpp and gradient_family.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "../backend.h"

namespace gb::kernels {

class CpuBackend final : public Backend {
public:
    Device device() const override { return Device::cpu(); }
    std::string name() const override { return "cpu"; }

#define GB_OP(ret, name, params) ret name params override;
#include "../ops.def"
#undef GB_OP

    // The fused forms: in the GEMM's epilogue (ReLU), and one pass per image (LRP term).
    void conv2d_forward_relu(const Conv2dGeom& g, const float* x, const float* w, const float* bias,
                             float* y) override;
    bool conv2d_lrp_term(const Conv2dGeom& g, const float* x, const float* w, const float* bias, const float* r,
                         float eps, float* out, const float* z_known, float* z_keep) override;
};

// The CPU backend's registrar (kernels/registry.h).
void register_cpu_backend();

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
