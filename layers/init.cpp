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

namespace {

// t's elements drawn in order, the values gb::uniform / gb::normal give: written
// in place on the CPU (no full-size temporary for the allocator to keep: a
// VGG-16 is 528 MB), through one host copy elsewhere.
template <class Draw>
void fill_drawn(Tensor& t, Draw draw) {
    GB_CHECK(t.dtype() == DType::Float32, "init: float32 tensor expected, got ", dtype_name(t.dtype()));
    if (t.device().is_cpu()) {
        float* p = t.data<float>();
        for (int64_t i = 0; i < t.numel(); ++i) p[i] = draw();
        t.bump_version();
        return;
    }
    std::vector<float> v(static_cast<size_t>(t.numel()));
    for (float& x : v) x = draw();
    t.copy_from(from_vector(v, t.shape()));
}

}  // namespace

void uniform(Tensor& t, float lo, float hi, Generator& gen) {
    GB_CHECK(lo <= hi, "uniform: low ", lo, " is above high ", hi);
    if (!t_skip) fill_drawn(t, [&] { return gen.uniform(lo, hi); });
}

void normal(Tensor& t, float mean, float stddev, Generator& gen) {
    GB_CHECK(stddev >= 0.f, "normal: negative standard deviation ", stddev);
    if (!t_skip) fill_drawn(t, [&] { return gen.normal(mean, stddev); });
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
