// Models whose explanations are known by construction, for the metric and
// perturbation tests: a linear classifier f(x) = W flatten(x) + b, whose exact
// attribution of class c for a zero baseline is W_c * x (elementwise).
#pragma once

#include <memory>

#include "core/factory.h"
#include "layers/flatten.h"
#include "layers/linear.h"
#include "layers/sequential.h"

namespace gb::testing {

struct LinearModel {
    std::shared_ptr<layers::Sequential> model = std::make_shared<layers::Sequential>();
    std::shared_ptr<layers::Linear> linear;
    int64_t C, H, W, K;

    LinearModel(int64_t c, int64_t h, int64_t w, int64_t k, uint64_t seed, bool bias = true) : C(c), H(h), W(w), K(k) {
        Generator g(seed);
        model->add(std::make_shared<layers::Flatten>());
        linear = model->add(std::make_shared<layers::Linear>(C * H * W, K, bias, g));
    }
    // The exact attribution W_c * (x - baseline) of each sample's class, [N, C, H, W].
    Tensor exact(const Tensor& x, const std::vector<int32_t>& classes, float baseline = 0.f) const {
        const auto w = linear->weight().to_vector<float>();
        auto v = x.to_vector<float>();
        const int64_t per = C * H * W;
        for (int64_t i = 0; i < x.numel(); ++i)
            v[static_cast<size_t>(i)] = (v[static_cast<size_t>(i)] - baseline) *
                                        w[static_cast<size_t>(classes[static_cast<size_t>(i / per)] * per + i % per)];
        return from_vector(v, x.shape());
    }
};

}  // namespace gb::testing
