// Dropout: in training, zeroes each element with probability p and scales the
// rest by 1/(1-p) (mask from a seeded Philox stream); in eval, the identity.
#pragma once

#include "core/rng.h"
#include "layers/layer.h"

namespace gb::layers {

class Dropout : public Layer {
public:
    explicit Dropout(float p = 0.5f, Generator& gen = default_generator());
    std::string type() const override { return "Dropout"; }
    std::string describe() const override;
    float p() const { return p_; }

protected:
    Tensor forward(const Tensor& x) override;

private:
    float p_;
    Generator* gen_;
};

}  // namespace gb::layers
