#include "layers/linear.h"

#include <cmath>

#include "core/profile.h"
#include "layers/layer_node.h"
#include "kernels/backend.h"
#include "layers/init.h"

namespace gb::layers {

namespace {

struct LinearNode : LinearLikeNode {
    Tensor x, w, b;
    Tensor y;  // the output, detached (no cycle through its grad_fn), for saved_output
    uint64_t y_version;
    LinearNode(Tensor x_, Tensor w_, Tensor b_, Tensor y_)
        : x(std::move(x_)), w(std::move(w_)), b(std::move(b_)), y(std::move(y_)), y_version(y.version()) {
        watch(x, "input");
        watch(w, "weight");
        watch(b, "bias");
    }
    std::string name() const override { return "LinearBackward"; }

    Tensor forward_with(const Tensor& xi, const Tensor& wi, const Tensor& bi) const override {
        const int64_t N = x.dim(0), in = x.dim(1), out = w.dim(0);
        auto& be = kernels::backend_for(xi.device());
        Tensor y(Shape{N, out}, DType::Float32, xi.device());
        be.gemm(false, true, N, out, in, 1.f, xi.data<float>(), in, wi.data<float>(), in, 0.f, y.data<float>(), out);
        if (bi.defined()) be.bias_add(N, out, 1, bi.data<float>(), y.data<float>());
        return y;
    }
    Tensor input_grad_with(const Tensor& s, const Tensor& wi) const override {
        const int64_t N = x.dim(0), in = x.dim(1), out = w.dim(0);
        Tensor dx(x.shape(), DType::Float32, s.device());
        kernels::backend_for(s.device())
            .gemm(false, false, N, in, out, 1.f, s.data<float>(), out, wi.data<float>(), in, 0.f, dx.data<float>(), in);
        return dx;
    }
    const Tensor& saved_input() const override { return x; }
    Tensor saved_weight() const override { return w; }
    Tensor saved_bias() const override { return b; }
    Tensor saved_output() const override { return y.defined() && y.version() == y_version ? y : Tensor(); }
    std::vector<Tensor> backward(const Tensor& dy) override {
        auto& be = kernels::backend_for(dy.device());
        const int64_t N = x.dim(0), in = x.dim(1), out = w.dim(0);
        std::vector<Tensor> grads(3);
        const double flops = 2.0 * static_cast<double>(N) * static_cast<double>(in) * static_cast<double>(out);
        if (needs_grad(0)) {  // dx = dy W
            const profile::Scope scope(layer(), "backward-data");
            profile::add_flops(flops);
            grads[0] = Tensor(x.shape(), DType::Float32, dy.device());
            be.gemm(false, false, N, in, out, 1.f, dy.data<float>(), out, w.data<float>(), in, 0.f,
                    grads[0].data<float>(), in);
        }
        const profile::Scope scope(layer(), "backward-weight");
        if (needs_grad(1)) {  // dW = dy^T x
            profile::add_flops(flops);
            grads[1] = Tensor(w.shape(), DType::Float32, dy.device());
            be.gemm(true, false, out, in, N, 1.f, dy.data<float>(), out, x.data<float>(), in, 0.f,
                    grads[1].data<float>(), in);
        }
        if (needs_grad(2)) {  // db = sum over the batch
            grads[2] = Tensor(Shape{out}, DType::Float32, dy.device());
            be.bias_grad(N, out, 1, dy.data<float>(), grads[2].data<float>());
        }
        return grads;
    }
    void release_saved() override { x = w = b = y = Tensor(); }
};

}  // namespace

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Generator& gen)
    : in_(in_features), out_(out_features) {
    GB_CHECK(in_ > 0 && out_ > 0, "Linear: feature counts must be positive, got in=", in_, " out=", out_);
    weight_ = add_parameter("weight", Tensor(Shape{out_, in_}));
    init::kaiming_uniform(weight_, std::sqrt(5.f), init::FanMode::In, gen);
    if (bias) {
        bias_ = add_parameter("bias", Tensor(Shape{out_}));
        const float bound = 1.f / std::sqrt(static_cast<float>(in_));
        init::uniform(bias_, -bound, bound, gen);
    }
}

std::string Linear::describe() const {
    return "Linear(in_features=" + std::to_string(in_) + ", out_features=" + std::to_string(out_) +
           (bias_.defined() ? ", bias=true)" : ", bias=false)");
}

Tensor Linear::forward(const Tensor& x) {
    GB_CHECK(x.dtype() == DType::Float32 && x.rank() == 2 && x.dim(1) == in_, "Linear(", in_, " -> ", out_,
             "): expected a float32 input [N, ", in_, "], got ", dtype_name(x.dtype()), " ", x.shape().str(),
             x.rank() == 4 ? " (flatten the feature maps first)" : "");
    check_same_device(x, weight_, "Linear input and weight");
    const int64_t N = x.dim(0);
    profile::add_flops(2.0 * static_cast<double>(N) * static_cast<double>(in_) * static_cast<double>(out_));
    auto& be = kernels::backend_for(x.device());
    Tensor y(Shape{N, out_}, DType::Float32, x.device());
    be.gemm(false, true, N, out_, in_, 1.f, x.data<float>(), in_, weight_.data<float>(), in_, 0.f, y.data<float>(),
            out_);
    if (bias_.defined()) be.bias_add(N, out_, 1, bias_.data<float>(), y.data<float>());
    std::vector<Tensor> inputs{x, weight_, bias_};
    if (!autograd::should_record(inputs)) return y;
    return autograd::record(std::make_shared<LinearNode>(x.detach(), weight_.detach(),
                                                         bias_.defined() ? bias_.detach() : Tensor(), y.detach()),
                            inputs, y);
}

}  // namespace gb::layers
