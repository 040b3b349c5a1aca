#include "models/prune.h"

#include <algorithm>

#include "core/error.h"
#include "core/factory.h"
#include "layers/layers.h"
#include "layers/init.h"

namespace gb::models {

namespace {

// src viewed as [A, B, inner] (contiguous float32 on the CPU) -> [rows.size(), cols.size(), inner] with the
// listed indices of A and B; an empty list means all of that axis.
std::vector<float> gather(const Tensor& src, int64_t a, int64_t b, int64_t inner, const std::vector<int64_t>& rows,
                          const std::vector<int64_t>& cols) {
    GB_CHECK(src.numel() == a * b * inner, "prune: tensor ", src.shape().str(), " is not ", a, "x", b, "x", inner);
    const float* s = src.data<float>();
    std::vector<int64_t> r = rows, c = cols;
    if (r.empty())
        for (int64_t i = 0; i < a; ++i) r.push_back(i);
    if (c.empty())
        for (int64_t j = 0; j < b; ++j) c.push_back(j);
    std::vector<float> out;
    out.reserve(r.size() * c.size() * static_cast<size_t>(inner));
    for (int64_t i : r)
        for (int64_t j : c) {
            const float* p = s + (i * b + j) * inner;
            out.insert(out.end(), p, p + inner);
        }
    return out;
}

void fill(Tensor dst, const std::vector<float>& values) {
    GB_CHECK(static_cast<int64_t>(values.size()) == dst.numel(), "prune: internal size mismatch for ",
             dst.shape().str());
    dst.copy_from(from_vector(values, dst.shape()));
}

// Copies every state tensor of `src` into the same-named one of `dst`, unchanged.
void copy_state(const layers::Layer& src, layers::Layer& dst) {
    const auto s = src.state();
    auto d = dst.state();
    GB_CHECK(s.size() == d.size(), "prune: layer state differs");
    for (size_t i = 0; i < s.size(); ++i) d[i].second.copy_from(s[i].second);
}

}  // namespace

std::vector<std::string> conv_paths(Vgg& model) {
    std::vector<std::string> out;
    for (const auto& [name, child] : model.features().children())
        if (dynamic_cast<layers::Conv2d*>(child.get())) out.push_back("features." + name);
    return out;
}

std::shared_ptr<Vgg> prune(Vgg& model, const std::vector<std::vector<int64_t>>& keep) {
    const VggConfig& src_cfg = model.config();
    for (const auto& [name, t] : model.state())
        GB_CHECK(t.device().is_cpu(), "prune: the model must be on the CPU (", name, " is on ", t.device().str(), ")");
    VggConfig cfg = src_cfg;
    std::vector<std::vector<int64_t>> sorted;
    size_t l = 0;
    for (int64_t& width : cfg.features) {
        if (width == 0) continue;
        GB_CHECK(l < keep.size(), "prune: ", keep.size(), " lists of filters to keep for a model with more convolutions");
        std::vector<int64_t> k = keep[l];
        std::sort(k.begin(), k.end());
        GB_CHECK(!k.empty(), "prune: convolution ", l, " would keep no filter (at least one must stay)");
        GB_CHECK(std::adjacent_find(k.begin(), k.end()) == k.end(), "prune: convolution ", l,
                 " lists a filter twice");
        GB_CHECK(k.front() >= 0 && k.back() < width, "prune: convolution ", l, " has filters 0..", width - 1,
                 ", asked to keep ", k.front() < 0 ? k.front() : k.back());
        width = static_cast<int64_t>(k.size());
        sorted.push_back(std::move(k));
        ++l;
    }
    GB_CHECK(l == keep.size(), "prune: ", keep.size(), " lists of filters to keep for a model with ", l,
             " convolutions");

    std::shared_ptr<Vgg> out;
    {
        layers::init::SkipInit skip;  // every tensor is written below
        out = std::make_shared<Vgg>(cfg);
    }
    const auto& s_children = model.features().children();
    const auto& d_children = out->features().children();
    GB_CHECK(s_children.size() == d_children.size(), "prune: features differ in length");
    std::vector<int64_t> in_keep;  // input channels the current layer keeps (empty: all)
    int64_t channels = src_cfg.in_channels;
    l = 0;
    for (size_t i = 0; i < s_children.size(); ++i) {
        layers::Layer& s = *s_children[i].second;
        layers::Layer& d = *d_children[i].second;
        if (auto* conv = dynamic_cast<layers::Conv2d*>(&s)) {
            auto* dconv = dynamic_cast<layers::Conv2d*>(&d);
            const Tensor w = conv->weight();
            const int64_t k = w.dim(0), taps = w.dim(2) * w.dim(3);
            fill(dconv->weight(), gather(w, k, channels, taps, sorted[l], in_keep));
            if (conv->bias().defined()) fill(dconv->bias(), gather(conv->bias(), k, 1, 1, sorted[l], {}));
            in_keep = sorted[l];
            channels = k;
            ++l;
        } else if (dynamic_cast<layers::BatchNorm2d*>(&s)) {
            const auto ss = s.state();
            auto ds = d.state();
            for (size_t j = 0; j < ss.size(); ++j) {
                const Tensor& t = ss[j].second;
                if (t.rank() == 1 && t.dim(0) == channels)
                    fill(ds[j].second, gather(t, channels, 1, 1, in_keep, {}));
                else
                    ds[j].second.copy_from(t);
            }
        } else {
            copy_state(s, d);
        }
    }
    // The first Linear reads the flattened map: channel c's block is columns c*S*S .. (c+1)*S*S - 1.
    const int64_t area = model.feature_size() * model.feature_size();
    const auto& sc = model.classifier().children();
    const auto& dc = out->classifier().children();
    bool first = true;
    for (size_t i = 0; i < sc.size(); ++i) {
        auto* lin = dynamic_cast<layers::Linear*>(sc[i].second.get());
        if (lin && first) {
            auto* dlin = dynamic_cast<layers::Linear*>(dc[i].second.get());
            const Tensor w = lin->weight();
            // gather works on [A, B, inner]; the weight is [out, C, S*S] with C the last conv's channels.
            fill(dlin->weight(), gather(w, w.dim(0), channels, area, {}, in_keep));
            if (lin->bias().defined()) dlin->bias().copy_from(lin->bias());
            first = false;
        } else {
            copy_state(*sc[i].second, *dc[i].second);
        }
    }
    out->eval();
    return out;
}

}  // namespace gb::models
