// Parameter initialisers (in place, from a Generator), following PyTorch's
// torch.nn.init: fan_in = in_channels * receptive field, fan_out = out_channels * receptive field.
#pragma once

#include "../core/rng.h"
#include "../core/tensor.h"

namespace gb::layers::init {

enum class FanMode { In, Out };

// fan_in / fan_out of a weight [out, in, ...] (Linear [out, in], Conv2d [K, C, R, S]).
int64_t fan_in(const Tensor& w);
int64_t fan_out(const Tensor& w);

void uniform(Tensor& t, float lo, float hi, Generator& gen = default_generator());
void normal(Tensor& t, float mean, float stddev, Generator& gen = default_generator());
void constant(Tensor& t, float value);
// U(-b, b), b = gain * sqrt(3 / fan), gain = sqrt(2 / (1 + a^2)) (He et al. 2015).
void kaiming_uniform(Tensor& w, float a = 0.f, FanMode mode = FanMode::In, Generator& gen = default_generator());
// N(0, gain / sqrt(fan)).
void kaiming_normal(Tensor& w, float a = 0.f, FanMode mode = FanMode::In, Generator& gen = default_generator());
// U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010).
void xavier_uniform(Tensor& w, float gain = 1.f, Generator& gen = default_generator());
// N(0, gain * sqrt(2 / (fan_in + fan_out))).
void xavier_normal(Tensor& w, float gain = 1.f, Generator& gen = default_generator());

// While one is alive on this thread the initialisers above leave tensors as they are
// (uninitialised) and draw nothing: for building a model whose every parameter is
// loaded right after (models::load_checkpoint), which would otherwise draw, e.g.,
// VGG-16's 138 M random numbers twice (about 10 s) only to overwrite them.
class SkipInit {
public:
    SkipInit();
    ~SkipInit();
    SkipInit(const SkipInit&) = delete;
    SkipInit& operator=(const SkipInit&) = delete;

private:
    bool previous_;
};

}  // namespace gb::layers::init
