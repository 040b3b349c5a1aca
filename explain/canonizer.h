// BatchNorm folding (Zennit's SequentialMergeBatchNorm, exact variant): each
// BatchNorm2d that directly follows a Conv2d inside a Sequential is merged
// into that convolution, W' = W * g / sqrt(var + eps), b' = (b - mean) * g /
// sqrt(var + eps) + beta, and the BatchNorm is set to the identity (weight 1,
// bias 0, mean 0, var 1 - eps, so it multiplies by exactly 1). The model's
// outputs are unchanged up to rounding; LRP then sees the merged convolution.
// Everything is restored when the fold is destroyed (or restore() is called).
#pragma once

#include <vector>

#include "core/tensor.h"
#include "layers/layer.h"

namespace gb::explain {

class BatchNormFold {
public:
    explicit BatchNormFold(layers::Layer& model);
    ~BatchNormFold();
    BatchNormFold(const BatchNormFold&) = delete;
    BatchNormFold& operator=(const BatchNormFold&) = delete;

    int folded() const { return folded_; }  // how many BatchNorms were merged
    void restore();

private:
    struct Saved {
        Tensor target, original;
    };
    std::vector<Saved> saved_;
    int folded_ = 0;
};

}  // namespace gb::explain
