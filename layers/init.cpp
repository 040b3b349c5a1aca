#include "layers/init.h"

#include <cmath>

#include "core/factory.h"

namespace gb::layers::init {

namespace {
thread_local bool t_skip = false;

int64_t receptive(const Tensor& w) {
    GB_CHECK(w.rank() >= 2, "fan in/out needs a weight of rank >= 2, got shape ", w.shape().str());
    return w.shape().prod(2, w.rank());
}
int64_t fan(const Tensor& w, FanMode m) { return m == FanMode::In ? fan_in(w) : fan_out(w); }
float gain_for(float a) { return std::sqrt(2.f / (1.f + a * a)); }
}  // namespace

int64_t fan_in(const Tensor& w) { return w.dim(1) * receptive(w); }
int64_t fan_out(const Tensor& w) { return w.dim(0) * receptive(w); }

SkipInit::SkipInit() : previous_(t_skip) { t_skip = true; }
SkipInit::~SkipInit() { t_skip = previous_; }

void uniform(Tensor& t, float lo, float hi, Generator& gen) {
    if (!t_skip) t.copy_from(gb::uniform(t.shape(), lo, hi, gen));
}

void normal(Tensor& t, float mean, float stddev, Generator& gen) {
    if (!t_skip) t.copy_from(gb::normal(t.shape(), mean, stddev, gen));
}

void constant(Tensor& t, float value) {
    if (!t_skip) fill(t, value);
}

void kaiming_uniform(Tensor& w, float a, FanMode mode, Generator& gen) {
    const float bound = gain_for(a) * std::sqrt(3.f / static_cast<float>(fan(w, mode)));
    uniform(w, -bound, bound, gen);
}

void kaiming_normal(Tensor& w, float a, FanMode mode, Generator& gen) {
    normal(w, 0.f, gain_for(a) / std::sqrt(static_cast<float>(fan(w, mode))), gen);
}

void xavier_uniform(Tensor& w, float gain, Generator& gen) {
    const float bound = gain * std::sqrt(6.f / static_cast<float>(fan_in(w) + fan_out(w)));
    uniform(w, -bound, bound, gen);
}

void xavier_normal(Tensor& w, float gain, Generator& gen) {
    normal(w, 0.f, gain * std::sqrt(2.f / static_cast<float>(fan_in(w) + fan_out(w))), gen);
}

}  // namespace gb::layers::init
