// Pooling layers over NCHW: MaxPool2d (saves arg-max indices; the gradient goes
// to the first maximum), AvgPool2d (count_include_pad as PyTorch's default) and
// AdaptiveAvgPool2d (output size fixed, windows as PyTorch computes them).
#pragma once

#include "layer.h"

namespace gb::layers {

class MaxPool2d : public Layer {
public:
    // stride 0 means stride = kernel_size.
    explicit MaxPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0);
    std::string type() const override { return "MaxPool2d"; }
    std::string describe() const override;

protected:
    Tensor forward(const Tensor& x) override;

private:
    int64_t k_, s_, p_;
};

class AvgPool2d : public Layer {
public:
    explicit AvgPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0, bool count_include_pad = true);
    std::string type() const override { return "AvgPool2d"; }
    uint32_t capabilities() const override { return Capability::LinearLike | Capability::AveragePool; }
    std::string describe() const override;

protected:
    Tensor forward(const Tensor& x) override;

private:
    int64_t k_, s_, p_;
    bool include_pad_;
};

class AdaptiveAvgPool2d : public Layer {
public:
    AdaptiveAvgPool2d(int64_t out_h, int64_t out_w);
    std::string type() const override { return "AdaptiveAvgPool2d"; }
    uint32_t capabilities() const override { return Capability::LinearLike | Capability::AveragePool; }
    std::string describe() const override;

protected:
    Tensor forward(const Tensor& x) override;

private:
    int64_t oh_, ow_;
};

}  // namespace gb::layers
