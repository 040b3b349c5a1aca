#include "layers/batchnorm.h"

#include <cmath>
#include <sstream>

#include "layers/layer_node.h"
#include "core/factory.h"
#include "core/parallel.h"
#include "kernels/backend.h"
#include "kernels/common/normalization.h"

namespace gb::layers {

namespace {

thread_local const SyncBatchStats* g_sync = nullptr;

// fn(c) for every channel, the channels spread over the threads (each call writes only channel c's values, in a
// fixed order within the channel: the same sums on any number of threads).
template <class Fn>
void per_channel(int64_t C, Fn&& fn) {
    parallel_for(0, C, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) fn(c);
    });
}

// What a synchronised forward left its backward: the ranks and this rank's share of the batch's rows.
struct SyncInfo {
    const dist::Comm* comm = nullptr;
    double share = 1;
    int64_t count = 0;  // values per channel over every rank
};

struct BatchNormNode : LayerNode, ChannelAffine {
    Tensor x, gamma, beta, mean, invstd;
    Tensor running_mean, running_var;  // the layer's buffers (eval mode), for affine_sources
    bool training;
    SyncInfo sync;
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
        if (sync.comm) return sync_backward(dy);
        const int64_t N = x.dim(0), C = x.dim(1), HW = x.dim(2) * x.dim(3);
        Tensor dx(x.shape(), DType::Float32, dy.device());
        Tensor dgamma(Shape{C}, DType::Float32, dy.device()), dbeta(Shape{C}, DType::Float32, dy.device());
        kernels::backend_for(dy.device())
            .batchnorm_backward(N, C, HW, x.data<float>(), dy.data<float>(), gamma.data<float>(), mean.data<float>(),
                                invstd.data<float>(), training, dx.data<float>(), dgamma.data<float>(),
                                dbeta.data<float>());
        return {needs_grad(0) ? dx : Tensor(), needs_grad(1) ? dgamma : Tensor(), needs_grad(2) ? dbeta : Tensor()};
    }
    // Synchronised: dx through the statistics of every rank's values. In units of the batch's loss (this rank's
    // loss times its share s), dy_b = s dy, and the means of dy_b and dy_b xhat are sums over the ranks; this
    // rank's dx is returned in its own units: k (dy - (mean_dy_b + xhat mean_dy_xhat_b) / s). dgamma and dbeta
    // are this rank's sums (data-parallel training scales and sums them with the other gradients).
    std::vector<Tensor> sync_backward(const Tensor& dy) {
        GB_CHECK(dy.device().is_cpu(), label(), ": synchronised BatchNorm runs on the CPU only");
        const int64_t N = x.dim(0), C = x.dim(1), HW = x.dim(2) * x.dim(3);
        const float* xp = x.data<float>();
        const float* gp = dy.data<float>();
        const auto mu = mean.to_vector<float>(), is = invstd.to_vector<float>(), g = gamma.to_vector<float>();
        std::vector<double> sums(static_cast<size_t>(2 * C), 0.0);  // sum dy, sum dy xhat per channel
        per_channel(C, [&](int64_t c) {
            const size_t k = static_cast<size_t>(c);
            for (int64_t n = 0; n < N; ++n)
                for (int64_t i = 0; i < HW; ++i) {
                    const int64_t at = (n * C + c) * HW + i;
                    sums[k] += gp[at];
                    sums[static_cast<size_t>(C) + k] += static_cast<double>(gp[at]) * ((xp[at] - mu[k]) * is[k]);
                }
        });
        Tensor dgamma(Shape{C}), dbeta(Shape{C}), dx(x.shape());
        for (int64_t c = 0; c < C; ++c) {
            dbeta.data<float>()[c] = static_cast<float>(sums[static_cast<size_t>(c)]);
            dgamma.data<float>()[c] = static_cast<float>(sums[static_cast<size_t>(C + c)]);
        }
        for (double& v : sums) v *= sync.share;
        sync.comm->allreduce_sum(sums.data(), 2 * C);
        float* dp = dx.data<float>();
        per_channel(C, [&](int64_t c) {
            const size_t k = static_cast<size_t>(c);
            const float mean_dy = static_cast<float>(sums[k] / static_cast<double>(sync.count) / sync.share);
            const float mean_dy_xhat =
                static_cast<float>(sums[static_cast<size_t>(C) + k] / static_cast<double>(sync.count) / sync.share);
            const float kk = g[k] * is[k];
            for (int64_t n = 0; n < N; ++n)
                for (int64_t i = 0; i < HW; ++i) {
                    const int64_t at = (n * C + c) * HW + i;
                    dp[at] = kernels::bn_backward_train(gp[at], (xp[at] - mu[k]) * is[k], kk, mean_dy, mean_dy_xhat);
                }
        });
        return {needs_grad(0) ? dx : Tensor(), needs_grad(1) ? dgamma : Tensor(), needs_grad(2) ? dbeta : Tensor()};
    }
    // Without a rule, relevance passes through batch norm unchanged (Zennit's treatment
    // of a BatchNorm left in the model; fold it into the convolution first to account for it).
    std::vector<Tensor> relevance(const Tensor& r) override { return {r, Tensor(), Tensor()}; }
    void release_saved() override { x = gamma = beta = mean = invstd = running_mean = running_var = Tensor(); }
};

}  // namespace

SyncBatchStats::SyncBatchStats(const dist::Comm& comm, int64_t rows, int64_t total)
    : previous_(g_sync), comm_(comm), share_(total > 0 ? static_cast<double>(rows) / static_cast<double>(total) : 0.0) {
    GB_CHECK(rows > 0 && rows <= total, "synchronised BatchNorm: this rank holds ", rows, " of ", total,
             " rows; every rank needs at least one (the ranks meet in every BatchNorm layer)");
    g_sync = this;
}

SyncBatchStats::~SyncBatchStats() { g_sync = previous_; }

const SyncBatchStats* SyncBatchStats::active() { return g_sync; }

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
    SyncInfo sync;
    if (is_training() && SyncBatchStats::active()) {
        // Two-pass double sums over every rank's values, as the kernel's over one batch; then the kernel of
        // eval mode normalises with them (the same arithmetic as training's).
        const SyncBatchStats& group = *SyncBatchStats::active();
        GB_CHECK(x.device().is_cpu(), describe(), ": synchronised BatchNorm runs on the CPU only");
        const float* xp = x.data<float>();
        std::vector<double> s1(static_cast<size_t>(c_ + 1), 0.0);
        per_channel(c_, [&](int64_t c) {
            for (int64_t n = 0; n < N; ++n)
                for (int64_t i = 0; i < HW; ++i) s1[static_cast<size_t>(c)] += xp[(n * c_ + c) * HW + i];
        });
        s1[static_cast<size_t>(c_)] = static_cast<double>(N * HW);
        group.comm().allreduce_sum(s1.data(), c_ + 1);
        const int64_t M = static_cast<int64_t>(s1[static_cast<size_t>(c_)]);
        GB_CHECK(M > 1, describe(), ": training needs more than one value per channel over the ranks");
        std::vector<double> s2(static_cast<size_t>(c_), 0.0);
        std::vector<float> meanf(static_cast<size_t>(c_)), var(static_cast<size_t>(c_));
        per_channel(c_, [&](int64_t c) {
            const double mu = s1[static_cast<size_t>(c)] / static_cast<double>(M);
            meanf[static_cast<size_t>(c)] = static_cast<float>(mu);
            for (int64_t n = 0; n < N; ++n)
                for (int64_t i = 0; i < HW; ++i) {
                    const double d = xp[(n * c_ + c) * HW + i] - mu;
                    s2[static_cast<size_t>(c)] += d * d;
                }
        });
        group.comm().allreduce_sum(s2.data(), c_);
        std::vector<float> inv(static_cast<size_t>(c_));
        float* rm = running_mean_.data<float>();
        float* rv = running_var_.data<float>();
        for (int64_t c = 0; c < c_; ++c) {
            const size_t k = static_cast<size_t>(c);
            var[k] = static_cast<float>(s2[k] / static_cast<double>(M));
            inv[k] = kernels::bn_invstd(var[k], eps_);
            rm[c] = kernels::bn_running_update(rm[c], meanf[k], momentum_);
            rv[c] = kernels::bn_running_update(rv[c], kernels::bn_unbiased(var[k], M), momentum_);
        }
        running_mean_.bump_version();
        running_var_.bump_version();
        be.batchnorm_forward_eval(N, c_, HW, xp, weight_.data<float>(), bias_.data<float>(), meanf.data(), var.data(),
                                  eps_, y.data<float>());
        mean = from_vector(meanf, Shape{c_});
        invstd = from_vector(inv, Shape{c_});
        sync = SyncInfo{&group.comm(), group.share(), M};
    } else if (is_training()) {
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
    auto node = std::make_shared<BatchNormNode>(x.detach(), weight_.detach(), bias_.detach(), mean, invstd,
                                                is_training(), rm, rv);
    node->sync = sync;
    return autograd::record(node, inputs, y);
}

}  // namespace gb::layers
