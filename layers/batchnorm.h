// BatchNorm2d over NCHW per channel: y = (x - mean) / sqrt(var + eps) * weight + bias.
// Training: batch statistics, running stats updated with `momentum` (unbiased
// variance). Eval: running statistics. Buffers running_mean / running_var.
#pragma once

#include "../core/distributed.h"
#include "layer.h"

namespace gb::layers {

// While alive (on this thread): BatchNorm2d layers in training mode normalise with the statistics of the whole
// batch that the ranks of `comm` hold between them (synchronised BatchNorm), this process holding `rows` of
// its `total` rows. Mean and variance are sums over every rank's values (two allreduces per layer in the
// forward, one in the backward, whose gradients are in units of this rank's loss: the mean over its rows, as
// data-parallel training averages them, train/data_parallel.h). Every rank must run the same forward (a rank
// without rows would leave the others waiting). CPU tensors only.
class SyncBatchStats {
public:
    SyncBatchStats(const dist::Comm& comm, int64_t rows, int64_t total);
    ~SyncBatchStats();
    SyncBatchStats(const SyncBatchStats&) = delete;
    SyncBatchStats& operator=(const SyncBatchStats&) = delete;
    static const SyncBatchStats* active();
    const dist::Comm& comm() const { return comm_; }
    double share() const { return share_; }  // rows / total

private:
    const SyncBatchStats* previous_;
    const dist::Comm& comm_;
    double share_;
};

class BatchNorm2d : public Layer {
public:
    explicit BatchNorm2d(int64_t channels, float eps = 1e-5f, float momentum = 0.1f);
    std::string type() const override { return "BatchNorm2d"; }
    uint32_t capabilities() const override { return bits(Capability::ChannelAffine); }
    std::string describe() const override;

    Tensor weight() const { return weight_; }
    Tensor bias() const { return bias_; }
    Tensor running_mean() const { return running_mean_; }
    Tensor running_var() const { return running_var_; }
    float eps() const { return eps_; }
    int64_t channels() const { return c_; }

protected:
    Tensor forward(const Tensor& x) override;

private:
    int64_t c_;
    float eps_, momentum_;
    Tensor weight_, bias_, running_mean_, running_var_;
};

}  // namespace gb::layers
