#include "layers/pooling.h"

#include "layers/layer_node.h"
#include "kernels/backend.h"

namespace gb::layers {

namespace {

void check_nchw(const Tensor& x, const std::string& who) {
    GB_CHECK(x.dtype() == DType::Float32 && x.rank() == 4, who, ": expected a float32 input [N, C, H, W], got ",
             dtype_name(x.dtype()), " ", x.shape().str());
}

struct MaxPoolNode : LayerNode {
    kernels::Pool2dGeom g;
    Tensor indices;
    MaxPoolNode(const kernels::Pool2dGeom& geom, Tensor idx) : g(geom), indices(std::move(idx)) {}
    std::string name() const override { return "MaxPool2dBackward"; }
    std::vector<Tensor> backward(const Tensor& dy) override {
        Tensor dx(Shape{g.N, g.C, g.H, g.W}, DType::Float32, dy.device());
        kernels::backend_for(dy.device())
            .maxpool2d_backward(g, dy.data<float>(), indices.data<int32_t>(), dx.data<float>());
        return {dx};
    }
    void release_saved() override { indices = Tensor(); }
};

// Average pools are linear in x with no parameters: the Norm rule (and any
// epsilon-like rule) goes through the generic path with f = the pool.
struct AvgPoolNode : LinearLikeNode {
    kernels::Pool2dGeom g;
    Tensor x;
    AvgPoolNode(const kernels::Pool2dGeom& geom, Tensor x_) : g(geom), x(std::move(x_)) { watch(x, "input"); }
    std::string name() const override { return "AvgPool2dBackward"; }
    std::vector<Tensor> backward(const Tensor& dy) override { return {input_grad_with(dy, Tensor())}; }
    Tensor forward_with(const Tensor& xi, const Tensor&, const Tensor&) const override {
        Tensor y(Shape{g.N, g.C, g.P, g.Q}, DType::Float32, xi.device());
        kernels::backend_for(xi.device()).avgpool2d_forward(g, xi.data<float>(), y.data<float>());
        return y;
    }
    Tensor input_grad_with(const Tensor& dy, const Tensor&) const override {
        Tensor dx(Shape{g.N, g.C, g.H, g.W}, DType::Float32, dy.device());
        kernels::backend_for(dy.device()).avgpool2d_backward(g, dy.data<float>(), dx.data<float>());
        return dx;
    }
    const Tensor& saved_input() const override { return x; }
    void release_saved() override { x = Tensor(); }
};

struct AdaptiveAvgPoolNode : LinearLikeNode {
    Tensor x;
    int64_t P, Q;
    AdaptiveAvgPoolNode(Tensor x_, int64_t p, int64_t q) : x(std::move(x_)), P(p), Q(q) { watch(x, "input"); }
    std::string name() const override { return "AdaptiveAvgPool2dBackward"; }
    std::vector<Tensor> backward(const Tensor& dy) override { return {input_grad_with(dy, Tensor())}; }
    Tensor forward_with(const Tensor& xi, const Tensor&, const Tensor&) const override {
        Tensor y(Shape{x.dim(0), x.dim(1), P, Q}, DType::Float32, xi.device());
        kernels::backend_for(xi.device())
            .adaptive_avgpool2d_forward(x.dim(0) * x.dim(1), x.dim(2), x.dim(3), P, Q, xi.data<float>(), y.data<float>());
        return y;
    }
    Tensor input_grad_with(const Tensor& dy, const Tensor&) const override {
        Tensor dx(x.shape(), DType::Float32, dy.device());
        kernels::backend_for(dy.device())
            .adaptive_avgpool2d_backward(x.dim(0) * x.dim(1), x.dim(2), x.dim(3), P, Q, dy.data<float>(), dx.data<float>());
        return dx;
    }
    const Tensor& saved_input() const override { return x; }
    void release_saved() override { x = Tensor(); }
};

}  // namespace

MaxPool2d::MaxPool2d(int64_t kernel_size, int64_t stride, int64_t padding)
    : k_(kernel_size), s_(stride == 0 ? kernel_size : stride), p_(padding) {
    GB_CHECK(k_ > 0 && s_ > 0 && p_ >= 0 && 2 * p_ <= k_, "MaxPool2d: bad kernel ", k_, ", stride ", s_,
             " or padding ", p_, " (padding must be at most half the kernel)");
}

std::string MaxPool2d::describe() const {
    return "MaxPool2d(kernel_size=" + std::to_string(k_) + ", stride=" + std::to_string(s_) +
           ", padding=" + std::to_string(p_) + ")";
}

Tensor MaxPool2d::forward(const Tensor& x) {
    check_nchw(x, describe());
    const auto g = kernels::make_pool2d_geom(x.dim(0), x.dim(1), x.dim(2), x.dim(3), k_, k_, s_, s_, p_, p_);
    Tensor y(Shape{g.N, g.C, g.P, g.Q}, DType::Float32, x.device());
    Tensor idx(y.shape(), DType::Int32, x.device());
    kernels::backend_for(x.device()).maxpool2d_forward(g, x.data<float>(), y.data<float>(), idx.data<int32_t>());
    return autograd::record(std::make_shared<MaxPoolNode>(g, idx), {x}, y);
}

AvgPool2d::AvgPool2d(int64_t kernel_size, int64_t stride, int64_t padding, bool count_include_pad)
    : k_(kernel_size), s_(stride == 0 ? kernel_size : stride), p_(padding), include_pad_(count_include_pad) {
    GB_CHECK(k_ > 0 && s_ > 0 && p_ >= 0 && 2 * p_ <= k_, "AvgPool2d: bad kernel ", k_, ", stride ", s_,
             " or padding ", p_, " (padding must be at most half the kernel)");
}

std::string AvgPool2d::describe() const {
    return "AvgPool2d(kernel_size=" + std::to_string(k_) + ", stride=" + std::to_string(s_) +
           ", padding=" + std::to_string(p_) + (include_pad_ ? ")" : ", count_include_pad=false)");
}

Tensor AvgPool2d::forward(const Tensor& x) {
    check_nchw(x, describe());
    const auto g =
        kernels::make_pool2d_geom(x.dim(0), x.dim(1), x.dim(2), x.dim(3), k_, k_, s_, s_, p_, p_, include_pad_);
    Tensor y(Shape{g.N, g.C, g.P, g.Q}, DType::Float32, x.device());
    kernels::backend_for(x.device()).avgpool2d_forward(g, x.data<float>(), y.data<float>());
    if (!autograd::should_record({x})) return y;
    return autograd::record(std::make_shared<AvgPoolNode>(g, x.detach()), {x}, y);
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(int64_t out_h, int64_t out_w) : oh_(out_h), ow_(out_w) {
    GB_CHECK(oh_ > 0 && ow_ > 0, "AdaptiveAvgPool2d: output size must be positive, got ", oh_, "x", ow_);
}

std::string AdaptiveAvgPool2d::describe() const {
    return "AdaptiveAvgPool2d(output_size=(" + std::to_string(oh_) + ", " + std::to_string(ow_) + "))";
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
    check_nchw(x, describe());
    GB_CHECK(x.dim(2) > 0 && x.dim(3) > 0, describe(), ": empty input ", x.shape().str());
    Tensor y(Shape{x.dim(0), x.dim(1), oh_, ow_}, DType::Float32, x.device());
    kernels::backend_for(x.device())
        .adaptive_avgpool2d_forward(x.dim(0) * x.dim(1), x.dim(2), x.dim(3), oh_, ow_, x.data<float>(),
                                    y.data<float>());
    if (!autograd::should_record({x})) return y;
    return autograd::record(std::make_shared<AdaptiveAvgPoolNode>(x.detach(), oh_, ow_), {x}, y);
}

}  // namespace gb::layers
