#include "explain/model_methods.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "autograd/engine.h"
#include "core/error.h"
#include "core/factory.h"
#include "explain/metrics.h"
#include "explain/perturbation.h"
#include "explain/trace.h"

namespace gb::explain {

namespace {

// The objectives' values and their input gradients for the batch x.
std::pair<std::vector<double>, std::vector<float>> objective_gradient(layers::Layer& model, const Tensor& x,
                                                                      const std::vector<Objective>& objectives) {
    const int64_t B = x.dim(0);
    GB_CHECK(static_cast<int64_t>(objectives.size()) == B, "activation maximisation: ", objectives.size(),
             " objectives for a batch of ", B);
    Trace t(model, x);
    std::vector<double> values(static_cast<size_t>(B), 0.0);
    std::vector<float> grad(static_cast<size_t>(x.numel()), 0.f);
    // Rows grouped by layer: one backward pass per layer.
    std::map<std::string, std::vector<int64_t>> by_layer;
    for (int64_t b = 0; b < B; ++b) by_layer[objectives[static_cast<size_t>(b)].layer].push_back(b);
    for (const auto& [layer, rows] : by_layer) {
        const Tensor& out = layer.empty() ? t.logits() : t.layer_output(layer);
        const int64_t ch = out.dim(1), per = out.numel() / (B * ch);
        const auto ov = out.to_vector<float>();
        std::vector<float> seed(static_cast<size_t>(out.numel()), 0.f);
        for (int64_t b : rows) {
            const int64_t c = objectives[static_cast<size_t>(b)].index;
            GB_CHECK(c >= 0 && c < ch, "activation maximisation: ", objectives[static_cast<size_t>(b)].str(), " is outside the ",
                     ch, (layer.empty() ? " classes" : " channels of " + layer));
            double v = 0;
            for (int64_t i = 0; i < per; ++i) {
                seed[static_cast<size_t>((b * ch + c) * per + i)] = 1.f / static_cast<float>(per);
                v += ov[static_cast<size_t>((b * ch + c) * per + i)];
            }
            values[static_cast<size_t>(b)] = v / static_cast<double>(per);
        }
        const Tensor s = from_vector(seed, out.shape(), out.device());
        const Tensor g = layer.empty() ? t.gradient(s)[0] : autograd::grad({out}, {t.input()}, {s}, true)[0];
        const auto gv = g.to_vector<float>();
        const int64_t xper = x.numel() / B;
        for (int64_t b : rows)
            std::copy(gv.begin() + b * xper, gv.begin() + (b + 1) * xper, grad.begin() + b * xper);
    }
    return {values, grad};
}

// Shifts every [H, W] plane by (dy, dx), wrapping around.
std::vector<float> roll(const std::vector<float>& v, int64_t planes, int64_t H, int64_t W, int64_t dy, int64_t dx) {
    std::vector<float> out(v.size());
    // Shifts of any size (a jitter larger than the image included) wrap to [0, H) x [0, W).
    dy = ((dy % H) + H) % H;
    dx = ((dx % W) + W) % W;
    for (int64_t p = 0; p < planes; ++p)
        for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x)
                out[static_cast<size_t>((p * H + (y + dy) % H) * W + (x + dx) % W)] = v[static_cast<size_t>((p * H + y) * W + x)];
    return out;
}

}  // namespace

std::string Objective::str() const {
    return layer.empty() ? "class " + std::to_string(index) : layer + " channel " + std::to_string(index);
}

std::vector<double> objective_values(layers::Layer& model, const Tensor& x, const std::vector<Objective>& objectives) {
    return objective_gradient(model, x, objectives).first;
}

ActivationMaxResult activation_maximisation(layers::Layer& model, const Shape& input, const std::vector<Objective>& objectives,
                                            const ActivationMaxOptions& o) {
    GB_CHECK(input.rank() == 3, "activation maximisation: the input shape must be [C, H, W], got ", input.str());
    GB_CHECK(!objectives.empty() && o.steps >= 0 && o.lr > 0.f && o.l2 >= 0.f && o.jitter >= 0 && o.blur_every >= 0 && o.low < o.high,
             "activation maximisation: needs objectives, steps >= 0, lr > 0, l2 >= 0, jitter >= 0, low < high");
    const int64_t B = static_cast<int64_t>(objectives.size()), C = input[0], H = input[1], W = input[2];
    const Shape shape{B, C, H, W};
    Generator g(o.seed);
    const float mid = 0.5f * (o.low + o.high), spread = 0.05f * (o.high - o.low);
    std::vector<float> x = uniform(shape, mid - spread, mid + spread, g).to_vector<float>();
    ActivationMaxResult r;
    PerturbationOptions blur;
    blur.replacement = Replacement::Blur;
    blur.blur_sigma = o.blur_sigma;
    for (int64_t step = 0; step <= o.steps; ++step) {
        const int64_t dy = o.jitter ? static_cast<int64_t>(g.below(static_cast<uint64_t>(2 * o.jitter + 1))) - o.jitter : 0;
        const int64_t dx = o.jitter ? static_cast<int64_t>(g.below(static_cast<uint64_t>(2 * o.jitter + 1))) - o.jitter : 0;
        const Tensor xt = from_vector(step == o.steps ? x : roll(x, B * C, H, W, dy, dx), shape);
        auto [values, grad] = objective_gradient(model, xt, objectives);
        if (step == 0) r.start = values;
        if (step == o.steps) {  // the final value, at the unshifted image
            r.value = values;
            break;
        }
        grad = roll(grad, B * C, H, W, -dy, -dx);
        const int64_t per = C * H * W;
        for (int64_t b = 0; b < B; ++b) {
            double m = 0;
            for (int64_t i = 0; i < per; ++i) m += std::fabs(grad[static_cast<size_t>(b * per + i)]);
            const float scale = o.lr / static_cast<float>(m / static_cast<double>(per) + 1e-12);
            for (int64_t i = 0; i < per; ++i) {
                float& v = x[static_cast<size_t>(b * per + i)];
                v = std::clamp(v + scale * grad[static_cast<size_t>(b * per + i)] - o.lr * o.l2 * (v - mid), o.low, o.high);
            }
        }
        if (o.blur_every > 0 && (step + 1) % o.blur_every == 0)
            x = replacement_image(from_vector(x, shape), blur).to_vector<float>();
    }
    r.images = from_vector(x, shape);
    return r;
}

std::vector<LayerImportance> channel_importance(layers::Layer& model, const Tensor& data, const std::vector<std::string>& wanted,
                                                int64_t batch) {
    GB_CHECK(data.rank() == 4 && data.dim(0) > 0, "channel importance: data must be a non-empty [N, C, H, W], got ", data.shape().str());
    std::vector<std::pair<std::string, layers::Layer*>> chosen;
    const auto all = model.named_layers();
    for (const auto& [path, layer] : all)
        if (wanted.empty() ? layer->has_any(layers::Capability::Convolution | layers::Capability::FullyConnected)
                           : std::find(wanted.begin(), wanted.end(), path) != wanted.end())
            chosen.emplace_back(path, layer);
    for (const auto& w : wanted) {
        bool found = false;
        for (const auto& c : chosen) found |= c.first == w;
        GB_CHECK(found, "channel importance: no layer '", w, "' in the model");
    }
    GB_CHECK(!chosen.empty(), "channel importance: the model has no Conv2d or Linear layer");
    std::vector<std::vector<double>> sums(chosen.size());
    std::vector<int64_t> counts(chosen.size(), 0);
    std::vector<std::pair<layers::Layer*, int>> hooks;
    for (size_t i = 0; i < chosen.size(); ++i)
        hooks.emplace_back(chosen[i].second, chosen[i].second->on_forward([&, i](layers::Layer&, const Tensor&, const Tensor& out) {
            const int64_t N = out.dim(0), ch = out.rank() >= 2 ? out.dim(1) : 1, per = out.numel() / (N * ch);
            const auto v = out.to_vector<float>();
            if (sums[i].empty()) sums[i].assign(static_cast<size_t>(ch), 0.0);
            for (int64_t n = 0; n < N; ++n)
                for (int64_t c = 0; c < ch; ++c)
                    for (int64_t k = 0; k < per; ++k) sums[i][static_cast<size_t>(c)] += std::fabs(v[static_cast<size_t>((n * ch + c) * per + k)]);
            counts[i] += N * per;
        }));
    try {
        predict(model, data, batch);
    } catch (...) {
        for (auto& [l, h] : hooks) l->remove_hook(h);
        throw;
    }
    for (auto& [l, h] : hooks) l->remove_hook(h);
    std::vector<LayerImportance> out;
    for (size_t i = 0; i < chosen.size(); ++i) {
        LayerImportance li{chosen[i].first, {}};
        for (size_t c = 0; c < sums[i].size(); ++c)
            li.channels.emplace_back(static_cast<int64_t>(c), sums[i][c] / static_cast<double>(counts[i]));
        std::stable_sort(li.channels.begin(), li.channels.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
        out.push_back(std::move(li));
    }
    return out;
}

std::vector<Counterfactual> counterfactuals(layers::Layer& model, const Tensor& x, const std::vector<int32_t>& targets,
                                            const CounterfactualOptions& o) {
    GB_CHECK(x.rank() == 4 && static_cast<int64_t>(targets.size()) == x.dim(0), "counterfactuals: ", targets.size(),
             " targets for an input ", x.shape().str());
    GB_CHECK(o.steps >= 0 && o.lr > 0.f && o.distance_weight >= 0.f && o.low < o.high,
             "counterfactuals: needs steps >= 0, lr > 0, distance_weight >= 0, low < high");
    const int64_t N = x.dim(0), per = x.numel() / N;
    const auto x0 = x.to_vector<float>();
    std::vector<float> cur = x0;
    std::vector<Counterfactual> out(static_cast<size_t>(N));
    std::vector<bool> done(static_cast<size_t>(N), false);
    for (int64_t step = 0;; ++step) {
        Trace t(model, from_vector(cur, x.shape(), x.device()));
        const int64_t K = t.logits().dim(1);
        const auto l = t.logits().to_vector<float>();
        std::vector<float> seed(static_cast<size_t>(N * K), 0.f);
        bool all_done = true;
        for (int64_t n = 0; n < N; ++n) {
            const int32_t tgt = targets[static_cast<size_t>(n)];
            GB_CHECK(tgt >= 0 && tgt < K, "counterfactuals: target ", tgt, " is outside [0, ", K, ")");
            const float* row = l.data() + n * K;
            const float mx = *std::max_element(row, row + K);
            double z = 0;
            for (int64_t k = 0; k < K; ++k) z += std::exp(static_cast<double>(row[k] - mx));
            Counterfactual& c = out[static_cast<size_t>(n)];
            if (!done[static_cast<size_t>(n)]) {
                c.target = tgt;
                c.new_class = static_cast<int32_t>(std::max_element(row, row + K) - row);
                c.target_probability = std::exp(static_cast<double>(row[tgt] - mx)) / z;
                c.steps = step;
                c.reached = c.new_class == tgt && c.target_probability >= o.confidence;
                if (c.reached || step == o.steps) done[static_cast<size_t>(n)] = true;
            }
            all_done &= done[static_cast<size_t>(n)];
            // d(-log p_t)/d logits = softmax - e_t
            for (int64_t k = 0; k < K; ++k)
                seed[static_cast<size_t>(n * K + k)] = static_cast<float>(std::exp(static_cast<double>(row[k] - mx)) / z) - (k == tgt ? 1.f : 0.f);
        }
        if (all_done) break;
        const auto g = t.gradient(from_vector(seed, Shape{N, K}, x.device()))[0].to_vector<float>();
        for (int64_t n = 0; n < N; ++n) {
            if (done[static_cast<size_t>(n)]) continue;
            for (int64_t i = n * per; i < (n + 1) * per; ++i) {
                const size_t k = static_cast<size_t>(i);
                cur[k] = std::clamp(cur[k] - o.lr * (g[k] + 2.f * o.distance_weight * (cur[k] - x0[k])), o.low, o.high);
            }
        }
    }
    for (int64_t n = 0; n < N; ++n) {
        Counterfactual& c = out[static_cast<size_t>(n)];
        double d = 0;
        for (int64_t i = n * per; i < (n + 1) * per; ++i) d += double(cur[static_cast<size_t>(i)] - x0[static_cast<size_t>(i)]) * (cur[static_cast<size_t>(i)] - x0[static_cast<size_t>(i)]);
        c.distance = std::sqrt(d);
        c.input = from_vector(std::vector<float>(cur.begin() + n * per, cur.begin() + (n + 1) * per), Shape{x.dim(1), x.dim(2), x.dim(3)});
    }
    return out;
}

}  // namespace gb::explain
