// Flatten: [N, C, H, W] -> [N, C*H*W] (dims from start_axis merged), a view.
#pragma once

#include "layer.h"

namespace gb::layers {

class Flatten : public Layer {
public:
    explicit Flatten(int64_t start_axis = 1) : start_(start_axis) {}
    std::string type() const override { return "Flatten"; }
    std::string describe() const override { return "Flatten(start_dim=" + std::to_string(start_) + ")"; }

protected:
    Tensor forward(const Tensor& x) override;

private:
    int64_t start_;
};

}  // namespace gb::layers
