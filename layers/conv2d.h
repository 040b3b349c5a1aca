// Conv2d: y = conv(x, W) + b over NCHW, groups = 1. Weight [out, in, k, k].
// Default init as PyTorch: W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
#pragma once

#include "../core/rng.h"
#include "../kernels/geometry.h"
#include "layer.h"

namespace gb::layers {

struct Conv2dOptions {
    int64_t stride = 1;
    int64_t padding = 0;
    int64_t dilation = 1;
    bool bias = true;
};

class Conv2d : public Layer {
public:
    Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv2dOptions options = {},
           Generator& gen = default_generator());
    std::string type() const override { return "Conv2d"; }
    uint32_t capabilities() const override { return Capability::LinearLike | Capability::Convolution; }
    std::string describe() const override;

    Tensor weight() const { return weight_; }
    Tensor bias() const { return bias_; }  // undefined without bias
    int64_t in_channels() const { return in_; }
    int64_t out_channels() const { return out_; }
    int64_t kernel_size() const { return k_; }
    const Conv2dOptions& options() const { return opt_; }

    // max(0, this layer's output) with the ReLU fused into the convolution (the
    // GEMM's epilogue on the CPU) and, when a graph is recorded, one node for both
    // (its backward masks the gradient by the output, its relevance is the
    // convolution's). Sequential uses it for a Conv2d followed by a ReLU when
    // neither has hooks; this layer's hooks are not run.
    Tensor forward_relu(const Tensor& x);

protected:
    Tensor forward(const Tensor& x) override;

private:
    kernels::Conv2dGeom geometry(const Tensor& x) const;
    Tensor compute(const Tensor& x, bool relu);

    int64_t in_, out_, k_;
    Conv2dOptions opt_;
    Tensor weight_, bias_;
};

}  // namespace gb::layers
