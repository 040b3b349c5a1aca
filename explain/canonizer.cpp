#include "explain/canonizer.h"

#include <cmath>

#include "core/factory.h"
#include "layers/batchnorm.h"
#include "layers/conv2d.h"

namespace gb::explain {

namespace {
void fold_in(layers::Layer& parent, std::vector<std::pair<Tensor, Tensor>>& saved, int& folded) {
    const auto& kids = parent.children();
    for (size_t i = 0; i < kids.size(); ++i) {
        fold_in(*kids[i].second, saved, folded);
        if (i + 1 >= kids.size()) continue;
        auto* conv = dynamic_cast<layers::Conv2d*>(kids[i].second.get());
        auto* bn = dynamic_cast<layers::BatchNorm2d*>(kids[i + 1].second.get());
        if (!conv || !bn || !conv->bias().defined() || bn->channels() != conv->out_channels()) continue;
        Tensor w = conv->weight(), b = conv->bias(), g = bn->weight(), beta = bn->bias(), mean = bn->running_mean(),
               var = bn->running_var();
        for (Tensor t : {w, b, g, beta, mean, var}) saved.emplace_back(t, t.clone());
        const auto gv = g.to_vector<float>(), bv = beta.to_vector<float>(), mv = mean.to_vector<float>(),
                   vv = var.to_vector<float>(), cb = b.to_vector<float>();
        auto wv = w.to_vector<float>();
        const int64_t K = conv->out_channels(), per = w.numel() / K;
        std::vector<float> nb(static_cast<size_t>(K));
        for (int64_t k = 0; k < K; ++k) {
            const size_t c = static_cast<size_t>(k);
            const double s = gv[c] / std::sqrt(static_cast<double>(vv[c]) + bn->eps());
            for (int64_t j = 0; j < per; ++j) wv[static_cast<size_t>(k * per + j)] = static_cast<float>(wv[static_cast<size_t>(k * per + j)] * s);
            nb[c] = static_cast<float>((cb[c] - mv[c]) * s + bv[c]);
        }
        w.copy_from(from_vector(wv, w.shape(), w.device()));
        b.copy_from(from_vector(nb, b.shape(), b.device()));
        g.copy_from(ones(g.shape(), g.device()));
        beta.copy_from(zeros(beta.shape(), DType::Float32, beta.device()));
        mean.copy_from(zeros(mean.shape(), DType::Float32, mean.device()));
        var.copy_from(full(var.shape(), 1.f - bn->eps(), var.device()));
        ++folded;
    }
}
}  // namespace

BatchNormFold::BatchNormFold(layers::Layer& model) {
    std::vector<std::pair<Tensor, Tensor>> saved;
    fold_in(model, saved, folded_);
    for (auto& [t, o] : saved) saved_.push_back({t, o});
}

BatchNormFold::~BatchNormFold() { restore(); }

void BatchNormFold::restore() {
    for (auto& s : saved_) s.target.copy_from(s.original);
    saved_.clear();
    folded_ = 0;
}

}  // namespace gb::explain
