// Shared helpers for the doctest suite: seeded random tensors, error measures,
// and a central-difference gradient checker.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "core/factory.h"
#include "core/tensor.h"

namespace gb::testing {

inline Tensor rand_tensor(const Shape& s, uint64_t seed, float lo = -1.f, float hi = 1.f) {
    Generator g(seed);
    return uniform(s, lo, hi, g);
}

inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    float m = 0.f;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
}

inline float max_abs(const std::vector<float>& a) {
    float m = 0.f;
    for (float v : a) m = std::max(m, std::fabs(v));
    return m;
}

// Checks d/d(inputs) of L = sum_i f(inputs)_i * w_i (w a fixed random weight,
// L accumulated in double on the host) against central differences with step h.
// Passes when |numeric - analytic| <= atol + rtol * |analytic| for every element.
// Float32 forward passes limit the numeric side to about 1e-7 * |L| / h, which
// is why the defaults are h = 1e-3, atol = 2e-3, rtol = 1e-2.
inline void gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs,
                      const std::string& what, float h = 1e-3f, float atol = 2e-3f, float rtol = 1e-2f) {
    for (auto& t : inputs) t.set_requires_grad(true);
    Tensor out = f(inputs);
    Generator g(999);
    const Tensor w = uniform(out.shape(), -1.f, 1.f, g);
    const std::vector<float> wv = w.to_vector<float>();
    auto loss = [&](const Tensor& o) {
        const std::vector<float> ov = o.to_vector<float>();
        double s = 0;
        for (size_t i = 0; i < ov.size(); ++i) s += static_cast<double>(ov[i]) * wv[i];
        return s;
    };
    const std::vector<Tensor> grads = autograd::grad({out}, inputs, {w});
    for (size_t k = 0; k < inputs.size(); ++k) {
        REQUIRE_MESSAGE(grads[k].defined(), what << ": no gradient for input " << k);
        const std::vector<float> ana = grads[k].to_vector<float>();
        float* p = inputs[k].data<float>();
        autograd::NoGradGuard no_grad;
        int bad = 0;
        for (int64_t i = 0; i < inputs[k].numel(); ++i) {
            const float orig = p[i];
            p[i] = orig + h;
            const double lp = loss(f(inputs));
            p[i] = orig - h;
            const double lm = loss(f(inputs));
            p[i] = orig;
            const double num = (lp - lm) / (2.0 * h);
            const double a = ana[static_cast<size_t>(i)];
            if (std::fabs(num - a) > atol + rtol * std::fabs(a) && bad++ < 5)
                FAIL_CHECK(what << ": input " << k << " element " << i << ": numeric " << num << " vs analytic " << a);
        }
        CHECK_MESSAGE(bad == 0, what << ": " << bad << " mismatching elements in input " << k);
    }
}

}  // namespace gb::testing
