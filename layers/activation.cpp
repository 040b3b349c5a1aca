#include "layers/activation.h"

#include "kernels/backend.h"
#include "layers/layer_node.h"

namespace gb::layers {

namespace {

// One node per ReLU layer call (so explanations can find the layer): saves the
// output for the backward (and the input under KeepForRules, for DeepLIFT);
// relevance passes through unchanged.
struct ReluLayerNode : RectifierNode {
    Tensor x, y;
    ReluLayerNode(Tensor x_, Tensor y_) : x(std::move(x_)), y(std::move(y_)) {
        watch(x, "input");
        watch(y, "output");
    }
    std::string name() const override { return "ReluBackward"; }
    std::vector<Tensor> backward(const Tensor& dy) override {
        Tensor dx(dy.shape(), DType::Float32, dy.device());
        kernels::backend_for(dy.device()).relu_backward(dy.numel(), y.data<float>(), dy.data<float>(), dx.data<float>());
        return {dx};
    }
    std::vector<Tensor> relevance(const Tensor& r) override { return {r}; }
    void release_saved() override { x = y = Tensor(); }
    Tensor saved_input() const override { return x; }
    Tensor saved_output() const override { return y; }
};

}  // namespace

Tensor ReLU::forward(const Tensor& x) {
    GB_CHECK(x.dtype() == DType::Float32, "ReLU: expected float32, got ", dtype_name(x.dtype()));
    Tensor y(x.shape(), DType::Float32, x.device());
    kernels::backend_for(x.device()).relu_forward(x.numel(), x.data<float>(), y.data<float>());
    if (!autograd::should_record({x})) return y;
    return autograd::record(std::make_shared<ReluLayerNode>(KeepForRules::active() ? x.detach() : Tensor(), y.detach()), {x}, y);
}

}  // namespace gb::layers
