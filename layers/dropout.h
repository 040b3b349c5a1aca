// Dropout: in training, zeroes each element with probability p and scales the
// rest by 1/(1-p); in eval, the identity. Masks come from a Philox stream: the
// given generator, or the process-wide default one (seed it with manual_seed)
// when none is given, as PyTorch does.
#pragma once

#include "../core/rng.h"
#include "layer.h"

namespace gb::layers {

class Dropout : public Layer {
public:
    explicit Dropout(float p = 0.5f, Generator* gen = nullptr);
    std::string type() const override { return "Dropout"; }
    std::string describe() const override;
    float p() const { return p_; }

protected:
    Tensor forward(const Tensor& x) override;

private:
    float p_;
    Generator* gen_;  // nullptr: default_generator() at call time
};

}  // namespace gb::layers
