// ReLU: y = max(x, 0); its derivative at 0 is 0. In relevance mode it passes
// relevance through unchanged (the standard LRP treatment).
#pragma once

#include "layer.h"

namespace gb::layers {

class ReLU : public Layer {
public:
    std::string type() const override { return "ReLU"; }
    uint32_t capabilities() const override { return bits(Capability::Rectifier); }

protected:
    Tensor forward(const Tensor& x) override;
};

}  // namespace gb::layers
