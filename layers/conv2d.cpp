#include "layers/conv2d.h"

#include <cmath>

#include "core/profile.h"
#include "layers/layer_node.h"
#include "kernels/backend.h"
#include "layers/init.h"

namespace gb::layers {

namespace {

struct Conv2dNode : LinearLikeNode {
    kernels::Conv2dGeom g;
    Tensor x, w, b;
    bool has_bias;
    Tensor z;  // the convolution's output, detached, for saved_output (undefined: not kept)
    uint64_t z_version = 0;
    Conv2dNode(const kernels::Conv2dGeom& geom, Tensor x_, Tensor w_, Tensor b_, Tensor z_ = Tensor())
        : g(geom), x(std::move(x_)), w(std::move(w_)), b(std::move(b_)), has_bias(b.defined()), z(std::move(z_)),
          z_version(z.defined() ? z.version() : 0) {
        watch(x, "input");
        watch(w, "weight");
        watch(b, "bias");
    }
    std::string name() const override { return "Conv2dBackward"; }

    Tensor forward_with(const Tensor& xi, const Tensor& wi, const Tensor& bi) const override {
        Tensor y(Shape{g.N, g.K, g.P, g.Q}, DType::Float32, xi.device());
        kernels::backend_for(xi.device())
            .conv2d_forward(g, xi.data<float>(), wi.data<float>(), bi.defined() ? bi.data<float>() : nullptr,
                            y.data<float>());
        return y;
    }
    Tensor input_grad_with(const Tensor& s, const Tensor& wi) const override {
        Tensor dx(x.shape(), DType::Float32, s.device());
        kernels::backend_for(s.device()).conv2d_backward_data(g, s.data<float>(), wi.data<float>(), dx.data<float>());
        return dx;
    }
    Tensor relevance_term(const Tensor& xi, const Tensor& wi, const Tensor& bi, const Tensor& r, float eps,
                          const Tensor& z_known, Tensor z_keep) const override {
        const Shape out_shape{g.N, g.K, g.P, g.Q};
        // A wrong shape: the generic path reports it.
        if (r.shape() != out_shape || (z_known.defined() && z_known.shape() != out_shape) ||
            (z_keep.defined() && z_keep.shape() != out_shape))
            return Tensor();
        Tensor out(xi.shape(), DType::Float32, xi.device());
        const bool done = kernels::backend_for(xi.device())
                              .conv2d_lrp_term(g, xi.data<float>(), wi.data<float>(),
                                               bi.defined() ? bi.data<float>() : nullptr, r.data<float>(), eps,
                                               out.data<float>(), z_known.defined() ? z_known.data<float>() : nullptr,
                                               z_keep.defined() ? z_keep.data<float>() : nullptr);
        return done ? out : Tensor();
    }
    const Tensor& saved_input() const override { return x; }
    Tensor saved_weight() const override { return w; }
    Tensor saved_bias() const override { return b; }
    Tensor saved_output() const override { return z.defined() && z.version() == z_version ? z : Tensor(); }
    std::vector<Tensor> backward(const Tensor& dy) override {
        auto& be = kernels::backend_for(dy.device());
        std::vector<Tensor> out(3);
        if (needs_grad(0)) {
            const profile::Scope scope(layer(), "backward-data");
            profile::add_flops(g.flops());
            out[0] = Tensor(x.shape(), DType::Float32, dy.device());
            be.conv2d_backward_data(g, dy.data<float>(), w.data<float>(), out[0].data<float>());
        }
        if (needs_grad(1) || needs_grad(2)) {
            const profile::Scope scope(layer(), "backward-weight");
            profile::add_flops(g.flops());
            Tensor dw(w.shape(), DType::Float32, dy.device());
            Tensor db = has_bias ? Tensor(Shape{g.K}, DType::Float32, dy.device()) : Tensor();
            be.conv2d_backward_weight(g, x.data<float>(), dy.data<float>(), dw.data<float>(),
                                      has_bias ? db.data<float>() : nullptr);
            if (needs_grad(1)) out[1] = dw;
            if (needs_grad(2)) out[2] = db;
        }
        return out;
    }
    void release_saved() override { x = w = b = z = Tensor(); }
};

// A Conv2d and the ReLU after it as one node (Conv2d::forward_relu): the
// gradient is masked by the saved output, then runs the convolution's backward.
// Relevance is the convolution's: a ReLU passes relevance unchanged.
struct ConvReluNode : Conv2dNode {
    Tensor y;
    ConvReluNode(const kernels::Conv2dGeom& geom, Tensor x_, Tensor w_, Tensor b_, Tensor y_)
        : Conv2dNode(geom, std::move(x_), std::move(w_), std::move(b_)), y(std::move(y_)) {
        watch(y, "output");
    }
    std::string name() const override { return "Conv2dReluBackward"; }
    std::vector<Tensor> backward(const Tensor& dy) override {
        Tensor dz(dy.shape(), DType::Float32, dy.device());
        {
            const profile::Scope scope(layer(), "backward ReLU mask");
            kernels::backend_for(dy.device()).relu_backward(dy.numel(), y.data<float>(), dy.data<float>(),
                                                            dz.data<float>());
        }
        return Conv2dNode::backward(dz);
    }
    void release_saved() override {
        Conv2dNode::release_saved();
        y = Tensor();
    }
};

}  // namespace

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv2dOptions options,
               Generator& gen)
    : in_(in_channels), out_(out_channels), k_(kernel_size), opt_(options) {
    GB_CHECK(in_ > 0 && out_ > 0 && k_ > 0, "Conv2d: channels and kernel size must be positive, got in=", in_,
             " out=", out_, " kernel=", k_);
    GB_CHECK(opt_.stride > 0 && opt_.padding >= 0 && opt_.dilation > 0, "Conv2d: bad stride ", opt_.stride,
             ", padding ", opt_.padding, " or dilation ", opt_.dilation);
    weight_ = add_parameter("weight", Tensor(Shape{out_, in_, k_, k_}));
    // PyTorch's default: kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    init::kaiming_uniform(weight_, std::sqrt(5.f), init::FanMode::In, gen);
    if (opt_.bias) {
        bias_ = add_parameter("bias", Tensor(Shape{out_}));
        const float bound = 1.f / std::sqrt(static_cast<float>(init::fan_in(weight_)));
        init::uniform(bias_, -bound, bound, gen);
    }
}

std::string Conv2d::describe() const {
    std::string s = "Conv2d(" + std::to_string(in_) + ", " + std::to_string(out_) +
                    ", kernel_size=" + std::to_string(k_) + ", stride=" + std::to_string(opt_.stride) +
                    ", padding=" + std::to_string(opt_.padding);
    if (opt_.dilation != 1) s += ", dilation=" + std::to_string(opt_.dilation);
    if (!opt_.bias) s += ", bias=false";
    return s + ")";
}

kernels::Conv2dGeom Conv2d::geometry(const Tensor& x) const {
    GB_CHECK(x.dtype() == DType::Float32 && x.rank() == 4 && x.dim(1) == in_, "Conv2d(", in_, " -> ", out_,
             "): expected a float32 input [N, ", in_, ", H, W], got ", dtype_name(x.dtype()), " ", x.shape().str());
    check_same_device(x, weight_, "Conv2d input and weight");
    return kernels::make_conv2d_geom(x.dim(0), in_, x.dim(2), x.dim(3), out_, k_, k_, opt_.stride, opt_.stride,
                                     opt_.padding, opt_.padding, opt_.dilation, opt_.dilation);
}

// The convolution, with the ReLU fused when `relu`; one node for what ran.
Tensor Conv2d::compute(const Tensor& x, bool relu) {
    const auto g = geometry(x);
    profile::add_flops(g.flops());
    Tensor y(Shape{g.N, g.K, g.P, g.Q}, DType::Float32, x.device());
    auto& be = kernels::backend_for(x.device());
    const float* b = opt_.bias ? bias_.data<float>() : nullptr;
    if (relu)
        be.conv2d_forward_relu(g, x.data<float>(), weight_.data<float>(), b, y.data<float>());
    else
        be.conv2d_forward(g, x.data<float>(), weight_.data<float>(), b, y.data<float>());
    std::vector<Tensor> inputs{x, weight_, bias_};
    if (!autograd::should_record(inputs)) return y;
    const Tensor bd = opt_.bias ? bias_.detach() : Tensor();
    if (!relu)
        return autograd::record(std::make_shared<Conv2dNode>(g, x.detach(), weight_.detach(), bd, y.detach()), inputs, y);
    auto node = std::make_shared<ConvReluNode>(g, x.detach(), weight_.detach(), bd, y.detach());
    node->set_layer(this);  // the call bypassed Layer::operator(), which would claim it
    return autograd::record(node, inputs, y);
}

Tensor Conv2d::forward_relu(const Tensor& x) { return compute(x, true); }

Tensor Conv2d::forward(const Tensor& x) { return compute(x, false); }

}  // namespace gb::layers
