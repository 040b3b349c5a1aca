// BatchNorm2d over NCHW per channel: y = (x - mean) / sqrt(var + eps) * weight + bias.
// Training: batch statistics, running stats updated with `momentum` (unbiased
// variance). Eval: running statistics. Buffers running_mean / running_var.
#pragma once

#include "layer.h"

namespace gb::layers {

class BatchNorm2d : public Layer {
public:
    explicit BatchNorm2d(int64_t channels, float eps = 1e-5f, float momentum = 0.1f);
    std::string type() const override { return "BatchNorm2d"; }
    uint32_t capabilities() const override { return bits(Capability::ChannelAffine); }
    std::string describe() const override;

    Tensor weight() const { return weight_; }
    Tensor bias() const { return bias_; }
    Tensor running_mean() const { return running_mean_; }
    Tensor running_var() const { return running_var_; }
    float eps() const { return eps_; }
    int64_t channels() const { return c_; }

protected:
    Tensor forward(const Tensor& x) override;

private:
    int64_t c_;
    float eps_, momentum_;
    Tensor weight_, bias_, running_mean_, running_var_;
};

}  // namespace gb::layers
