#include "layers/batchnorm.h"

#include <cmath>
#include <sstream>

#include "layers/layer_node.h"
#include "core/factory.h"
#include "kernels/backend.h"

namespace gb::layers {

namespace {

struct BatchNormNode : LayerNode, ChannelAffine {
    Tensor x, gamma, beta, mean, invstd;
    Tensor running_mean, running_var;  // the layer's buffers (eval mode), for affine_sources
    bool training;
    BatchNormNode(Tensor x_, Tensor g, Tensor be, Tensor m, Tensor s, bool t, Tensor rm = Tensor(), Tensor rv = Tensor())
        : x(std::move(x_)), gamma(std::move(g)), beta(std::move(be)), mean(std::move(m)), invstd(std::move(s)),
          running_mean(std::move(rm)), running_var(std::move(rv)), training(t) {
        watch(x, "input");
        watch(gamma, "weight");
        watch(beta, "bias");
        watch(running_mean, "running mean");
        watch(running_var, "running variance");
    }
    std::vector<Tensor> affine_sources() const override {
        if (training || !running_mean.defined()) return {};
        return {gamma, beta, running_mean, running_var};
    }
    // Eval mode: y = gamma invstd x + (beta - mean gamma invstd) per channel.
    std::pair<Tensor, Tensor> channel_affine() const override {
        GB_CHECK(!training, label(), ": recorded in training mode (batch statistics), so it is not a fixed "
                 "per-channel affine map and cannot be merged into the layer before it");
        const auto g = gamma.to_vector<float>(), be = beta.to_vector<float>(), m = mean.to_vector<float>(),
                   s = invstd.to_vector<float>();
        std::vector<float> scale(g.size()), shift(g.size());
        for (size_t c = 0; c < g.size(); ++c) {
            const double sc = static_cast<double>(g[c]) * s[c];
            scale[c] = static_cast<float>(sc);
            shift[c] = static_cast<float>(be[c] - m[c] * sc);
        }
        const Shape shape{static_cast<int64_t>(g.size())};
        return {from_vector(scale, shape, gamma.device()), from_vector(shift, shape, gamma.device())};
    }
    std::string name() const override { return "BatchNorm2dBackward"; }
    std::vector<Tensor> backward(const Tensor& dy) override {
        const int64_t N = x.dim(0), C = x.dim(1), HW = x.dim(2) * x.dim(3);
        Tensor dx(x.shape(), DType::Float32, dy.device());
        Tensor dgamma(Shape{C}, DType::Float32, dy.device()), dbeta(Shape{C}, DType::Float32, dy.device());
        kernels::backend_for(dy.device())
            .batchnorm_backward(N, C, HW, x.data<float>(), dy.data<float>(), gamma.data<float>(), mean.data<float>(),
                                invstd.data<float>(), training, dx.data<float>(), dgamma.data<float>(),
                                dbeta.data<float>());
        return {needs_grad(0) ? dx : Tensor(), needs_grad(1) ? dgamma : Tensor(), needs_grad(2) ? dbeta : Tensor()};
    }
    // Without a rule, relevance passes through batch norm unchanged (Zennit's treatment
    // of a BatchNorm left in the model; fold it into the convolution first to account for it).
    std::vector<Tensor> relevance(const Tensor& r) override { return {r, Tensor(), Tensor()}; }
    void release_saved() override { x = gamma = beta = mean = invstd = running_mean = running_var = Tensor(); }
};

}  // namespace

BatchNorm2d::BatchNorm2d(int64_t channels, float eps, float momentum) : c_(channels), eps_(eps), momentum_(momentum) {
    GB_CHECK(c_ > 0, "BatchNorm2d: channel count must be positive, got ", c_);
    GB_CHECK(eps_ > 0.f, "BatchNorm2d: eps must be positive, got ", eps_);
    GB_CHECK(momentum_ >= 0.f && momentum_ <= 1.f, "BatchNorm2d: momentum must be in [0, 1], got ", momentum_);
    weight_ = add_parameter("weight", ones(Shape{c_}));
    bias_ = add_parameter("bias", zeros(Shape{c_}));
    running_mean_ = add_buffer("running_mean", zeros(Shape{c_}));
    running_var_ = add_buffer("running_var", ones(Shape{c_}));
}

std::string BatchNorm2d::describe() const {
    std::ostringstream s;
    s << "BatchNorm2d(" << c_ << ", eps=" << eps_ << ", momentum=" << momentum_ << ")";
    return s.str();
}

Tensor BatchNorm2d::forward(const Tensor& x) {
    GB_CHECK(x.dtype() == DType::Float32 && x.rank() == 4 && x.dim(1) == c_, describe(),
             ": expected a float32 input [N, ", c_, ", H, W], got ", dtype_name(x.dtype()), " ", x.shape().str());
    check_same_device(x, weight_, "BatchNorm2d input and weight");
    const int64_t N = x.dim(0), HW = x.dim(2) * x.dim(3);
    auto& be = kernels::backend_for(x.device());
    Tensor y(x.shape(), DType::Float32, x.device());
    Tensor mean(Shape{c_}, DType::Float32, x.device()), invstd(Shape{c_}, DType::Float32, x.device());
    const std::vector<Tensor> inputs{x, weight_, bias_};
    if (is_training()) {
        GB_CHECK(N * HW > 1, describe(), ": training needs more than one value per channel, got input ",
                 x.shape().str());
        be.batchnorm_forward_train(N, c_, HW, x.data<float>(), weight_.data<float>(), bias_.data<float>(), eps_,
                                   momentum_, running_mean_.data<float>(), running_var_.data<float>(),
                                   y.data<float>(), mean.data<float>(), invstd.data<float>());
        running_mean_.bump_version();
        running_var_.bump_version();
    } else {
        be.batchnorm_forward_eval(N, c_, HW, x.data<float>(), weight_.data<float>(), bias_.data<float>(),
                                  running_mean_.data<float>(), running_var_.data<float>(), eps_, y.data<float>());
        if (!autograd::should_record(inputs)) return y;
        // The statistics are constants in eval mode: invstd = 1/sqrt(running_var + eps).
        std::vector<float> var = running_var_.to_vector<float>(), inv(static_cast<size_t>(c_));
        for (size_t c = 0; c < inv.size(); ++c) inv[c] = 1.f / std::sqrt(var[c] + eps_);
        mean = running_mean_.clone();
        invstd = from_vector(inv, Shape{c_}, x.device());
    }
    if (!autograd::should_record(inputs)) return y;
    Tensor rm = is_training() ? Tensor() : running_mean_.detach(), rv = is_training() ? Tensor() : running_var_.detach();
    return autograd::record(std::make_shared<BatchNormNode>(x.detach(), weight_.detach(), bias_.detach(), mean, invstd,
                                                            is_training(), rm, rv),
                            inputs, y);
}

}  // namespace gb::layers
