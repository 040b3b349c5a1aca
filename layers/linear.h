// Linear: y = x W^T + b for x [N, in]; weight [out, in] (PyTorch layout).
// Default init as PyTorch: W and b ~ U(-1/sqrt(in), 1/sqrt(in)).
#pragma once

#include "../core/rng.h"
#include "layer.h"

namespace gb::layers {

class Linear : public Layer {
public:
    Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator& gen = default_generator());
    std::string type() const override { return "Linear"; }
    uint32_t capabilities() const override { return Capability::LinearLike | Capability::FullyConnected; }
    std::string describe() const override;

    Tensor weight() const { return weight_; }
    Tensor bias() const { return bias_; }
    int64_t in_features() const { return in_; }
    int64_t out_features() const { return out_; }

protected:
    Tensor forward(const Tensor& x) override;

private:
    int64_t in_, out_;
    Tensor weight_, bias_;
};

}  // namespace gb::layers
