#include "explain/model_methods.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "autograd/engine.h"
#include "core/error.h"
#include "core/factory.h"
#include "explain/metrics.h"
#include "explain/perturbation.h"
#include "explain/trace.h"
#include "kernels/backend.h"

namespace gb::explain {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

Tensor like(const Tensor& t) { return Tensor(t.shape(), DType::Float32, t.device()); }

// out = |x| = max(x, 0) - min(x, 0) on the backend (out and scratch: x's shape).
void abs_into(kernels::Backend& be, const Tensor& x, Tensor& out, Tensor& scratch) {
    be.clamp(x.numel(), 0.f, kInf, x.data<float>(), out.data<float>());
    be.clamp(x.numel(), -kInf, 0.f, x.data<float>(), scratch.data<float>());
    be.sub(x.numel(), out.data<float>(), scratch.data<float>(), out.data<float>());
}

// The device of the model's parameters (the CPU for a model without any).
Device model_device(layers::Layer& model) {
    const auto params = model.parameters();
    return params.empty() ? Device::cpu() : params.front().device();
}

// The objectives' values (one per row, on the host) and their input gradients (on x's device) for the batch x.
std::pair<std::vector<double>, Tensor> objective_gradient(layers::Layer& model, const Tensor& x,
                                                          const std::vector<Objective>& objectives) {
    const int64_t B = x.dim(0), xper = x.numel() / B;
    GB_CHECK(static_cast<int64_t>(objectives.size()) == B, "activation maximisation: ", objectives.size(),
             " objectives for a batch of ", B);
    auto& be = kernels::backend_for(x.device());
    Trace t(model, x);
    std::vector<double> values(static_cast<size_t>(B), 0.0);
    Tensor grad = like(x);
    // Rows grouped by layer: one backward pass per layer.
    std::map<std::string, std::vector<int64_t>> by_layer;
    for (int64_t b = 0; b < B; ++b) by_layer[objectives[static_cast<size_t>(b)].layer].push_back(b);
    for (const auto& [layer, rows] : by_layer) {
        const Tensor& out = layer.empty() ? t.logits() : t.layer_output(layer);
        const int64_t ch = out.dim(1), per = out.numel() / (B * ch);
        // The centre unit's offset within a channel's plane (0 for a [B, K] output).
        const int64_t centre = out.rank() == 4 ? (out.dim(2) / 2) * out.dim(3) + out.dim(3) / 2 : 0;
        // Every (row, channel)'s sum over positions, and each row's centre unit of every channel, on the backend;
        // the host reads the B it needs.
        Tensor sums(Shape{B * ch}, DType::Float32, out.device()), units(Shape{B}, DType::Float32, out.device());
        be.sum_dim(B * ch, per, 1, out.data<float>(), sums.data<float>());
        for (int64_t b : rows) {
            const Objective& o = objectives[static_cast<size_t>(b)];
            GB_CHECK(o.index >= 0 && o.index < ch, "activation maximisation: ",
                     (layer.empty() ? "class " : layer + " channel ") + std::to_string(o.index), " is outside the ", ch,
                     (layer.empty() ? " classes" : " channels of " + layer));
            be.copy(1, out.data<float>() + (b * ch + o.index) * per + centre, units.data<float>() + b);
        }
        const auto sv = sums.to_vector<float>(), uv = units.to_vector<float>();
        // The seed: the gradient of each row's objective with respect to `out` (1 at the centre unit, or 1/per
        // over the channel for its mean), 0 elsewhere.
        Tensor seed = zeros(out.shape(), DType::Float32, out.device());
        for (int64_t b : rows) {  // one objective each: a value, one fill
            const Objective& o = objectives[static_cast<size_t>(b)];
            float* plane = seed.data<float>() + (b * ch + o.index) * per;
            if (o.centre) {
                values[static_cast<size_t>(b)] = static_cast<double>(uv[static_cast<size_t>(b)]);
                be.fill(1, 1.f, plane + centre);
            } else {
                values[static_cast<size_t>(b)] =
                    static_cast<double>(sv[static_cast<size_t>(b * ch + o.index)]) / static_cast<double>(per);
                be.fill(per, 1.f / static_cast<float>(per), plane);
            }
        }
        const Tensor g = layer.empty() ? t.gradient(seed)[0] : autograd::grad({out}, {t.input()}, {seed}, true)[0];
        for (int64_t b : rows) be.copy(xper, g.data<float>() + b * xper, grad.data<float>() + b * xper);
    }
    return {values, grad};
}

}  // namespace

std::string Objective::str() const {
    return layer.empty() ? "class " + std::to_string(index)
                         : layer + " channel " + std::to_string(index) + (centre ? " (centre unit)" : " (mean)");
}

Tensor total_variation_gradient(const Tensor& x, int64_t planes, int64_t H, int64_t W) {
    // TV = ||D_W x^T||^2 + ||D_H x||^2 per plane with D_n the [n - 1, n] forward difference, so its gradient is
    // 2 (x L_W + L_H x) with L_n = D_n^T D_n: tridiagonal, -1 off the diagonal, 1 2 ... 2 1 on it. Two GEMMs
    // per plane, as gaussian_blur does.
    const auto laplacian = [](int64_t n) {
        std::vector<float> l(static_cast<size_t>(n * n), 0.f);
        for (int64_t i = 0; i + 1 < n; ++i) {
            l[static_cast<size_t>(i * n + i)] += 1.f;
            l[static_cast<size_t>((i + 1) * n + i + 1)] += 1.f;
            l[static_cast<size_t>(i * n + i + 1)] -= 1.f;
            l[static_cast<size_t>((i + 1) * n + i)] -= 1.f;
        }
        return l;
    };
    const Device dev = x.device();
    kernels::Backend& be = kernels::backend_for(dev);
    const Tensor lw = from_vector(laplacian(W), Shape{W, W}, dev), lh = from_vector(laplacian(H), Shape{H, H}, dev);
    Tensor out = empty(x.shape(), DType::Float32, dev);
    be.gemm(false, false, planes * H, W, W, 2.f, x.data<float>(), W, lw.data<float>(), W, 0.f, out.data<float>(), W);
    for (int64_t p = 0; p < planes; ++p)
        be.gemm(false, false, H, W, H, 2.f, lh.data<float>(), H, x.data<float>() + p * H * W, W, 1.f,
                out.data<float>() + p * H * W, W);
    return out;
}

std::vector<double> objective_values(layers::Layer& model, const Tensor& x, const std::vector<Objective>& objectives) {
    return objective_gradient(model, x, objectives).first;
}

ActivationMaxResult activation_maximisation(layers::Layer& model, const Shape& input, const std::vector<Objective>& objectives,
                                            const ActivationMaxOptions& o, const ActivationMaxProgress& progress) {
    GB_CHECK(input.rank() == 3, "activation maximisation: the input shape must be [C, H, W], got ", input.str());
    GB_CHECK(!objectives.empty() && o.steps >= 0 && o.lr > 0.f && o.l2 >= 0.f && o.tv >= 0.f && o.jitter >= 0 && o.blur_every >= 0 &&
                 o.low < o.high,
             "activation maximisation: needs objectives, steps >= 0, lr > 0, l2 >= 0, tv >= 0, jitter >= 0, low < high");
    const int64_t B = static_cast<int64_t>(objectives.size()), C = input[0], H = input[1], W = input[2];
    const int64_t per = C * H * W, n = B * per;
    const Shape shape{B, C, H, W};
    const Device dev = model_device(model);
    auto& be = kernels::backend_for(dev);
    Generator g(o.seed);
    const float mid = 0.5f * (o.low + o.high), spread = 0.05f * (o.high - o.low);
    // The start is drawn once by the Generator on the host (its uniform stream, which the jitter draws continue).
    Tensor x = uniform(shape, mid - spread, mid + spread, g).to(dev);
    Tensor shifted(shape, DType::Float32, dev), grad(shape, DType::Float32, dev), a(shape, DType::Float32, dev),
        b(shape, DType::Float32, dev), sums(Shape{B}, DType::Float32, dev);
    ActivationMaxResult r;
    PerturbationOptions blur;
    blur.replacement = Replacement::Blur;
    blur.blur_sigma = o.blur_sigma;
    for (int64_t step = 0; step <= o.steps; ++step) {  // gradient ascent: each step needs the previous image
        const int64_t dy = o.jitter ? static_cast<int64_t>(g.below(static_cast<uint64_t>(2 * o.jitter + 1))) - o.jitter : 0;
        const int64_t dx = o.jitter ? static_cast<int64_t>(g.below(static_cast<uint64_t>(2 * o.jitter + 1))) - o.jitter : 0;
        if (step < o.steps) be.roll2d(B * C, H, W, dy, dx, x.data<float>(), shifted.data<float>());
        auto [values, shifted_grad] = objective_gradient(model, step == o.steps ? x : shifted, objectives);
        if (step == 0) r.start = values;
        if (progress) progress(step, values);
        if (step == o.steps) {  // the final value, at the unshifted image
            r.value = values;
            break;
        }
        be.roll2d(B * C, H, W, -dy, -dx, shifted_grad.data<float>(), grad.data<float>());
        // Step sizes lr / mean |g| per objective (or lr): the sums of |g| on the backend, the B scalars on the host.
        std::vector<float> scale(static_cast<size_t>(B), o.lr);
        if (o.normalize_gradient) {
            abs_into(be, grad, a, b);
            be.sum_dim(B, per, 1, a.data<float>(), sums.data<float>());
            const auto m = sums.to_vector<float>();
            for (int64_t k = 0; k < B; ++k)
                scale[static_cast<size_t>(k)] =
                    o.lr / static_cast<float>(static_cast<double>(m[static_cast<size_t>(k)]) / static_cast<double>(per) + 1e-12);
        }
        // x <- clamp(x + scale_b g - (lr l2) (x - mid) [- (lr tv) dTV/dx], low, high), in that order of float operations.
        const Tensor scale_t = from_vector(scale, Shape{B}, dev);
        be.broadcast_dim(B, per, 1, 1.f, scale_t.data<float>(), a.data<float>());
        be.mul(n, a.data<float>(), grad.data<float>(), a.data<float>());
        be.add(n, x.data<float>(), a.data<float>(), a.data<float>());
        be.fill(n, mid, b.data<float>());
        be.sub(n, x.data<float>(), b.data<float>(), b.data<float>());
        be.scale(n, o.lr * o.l2, b.data<float>(), b.data<float>());
        be.sub(n, a.data<float>(), b.data<float>(), a.data<float>());
        if (o.tv > 0.f) {
            const Tensor tv = total_variation_gradient(x, B * C, H, W);
            be.axpy(n, -o.lr * o.tv, tv.data<float>(), a.data<float>());
        }
        be.clamp(n, o.low, o.high, a.data<float>(), x.data<float>());
        if (o.blur_every > 0 && (step + 1) % o.blur_every == 0) x = replacement_image(x, blur);
    }
    r.images = x;
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
            // |a| summed over positions, then over samples, on the backend; the per-channel totals across
            // batches stay in double on the host.
            auto& be = kernels::backend_for(out.device());
            Tensor a = like(out), scratch = like(out), per_row(Shape{N * ch}, DType::Float32, out.device()),
                   per_channel(Shape{ch}, DType::Float32, out.device());
            abs_into(be, out, a, scratch);
            be.sum_dim(N * ch, per, 1, a.data<float>(), per_row.data<float>());
            be.sum_dim(1, N, ch, per_row.data<float>(), per_channel.data<float>());
            const auto v = per_channel.to_vector<float>();
            if (sums[i].empty()) sums[i].assign(static_cast<size_t>(ch), 0.0);
            for (int64_t c = 0; c < ch; ++c) sums[i][static_cast<size_t>(c)] += v[static_cast<size_t>(c)];
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
                                            const CounterfactualOptions& o, const Tensor& prototypes,
                                            const CounterfactualProgress& progress) {
    GB_CHECK(x.rank() == 4 && static_cast<int64_t>(targets.size()) == x.dim(0), "counterfactuals: ", targets.size(),
             " targets for an input ", x.shape().str());
    GB_CHECK(o.steps >= 0 && o.lr > 0.f && o.distance_weight >= 0.f && o.prototype_weight >= 0.f && o.low < o.high,
             "counterfactuals: needs steps >= 0, lr > 0, distance_weight >= 0, prototype_weight >= 0, low < high");
    const bool with_prototypes = o.prototype_weight > 0.f;
    GB_CHECK(!with_prototypes || (prototypes.defined() && prototypes.shape() == x.shape() && prototypes.device() == x.device()),
             "counterfactuals: prototype_weight > 0 needs one prototype per sample of the input's shape ", x.shape().str(),
             " on its device, got ", prototypes.defined() ? prototypes.shape().str() : std::string("none"));
    const int64_t N = x.dim(0), per = x.numel() / N;
    const Device dev = x.device();
    auto& be = kernels::backend_for(dev);
    Tensor cur = x.clone(), d = like(x), e = with_prototypes ? like(x) : Tensor();
    std::vector<Counterfactual> out(static_cast<size_t>(N));
    std::vector<bool> done(static_cast<size_t>(N), false);
    std::vector<std::vector<float>> path(static_cast<size_t>(N));  // each sample's softmax rows, until it is done
    int64_t K = 0;
    for (int64_t step = 0;; ++step) {  // gradient descent: each step needs the previous input
        Trace t(model, cur);
        K = t.logits().dim(1);
        // Per sample, from its K logits (bookkeeping, on the host): the softmax (recorded), the prediction,
        // p(target), whether it is done, and the seed d(-log p_t)/d logits = softmax - e_t.
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
                for (int64_t k = 0; k < K; ++k)
                    path[static_cast<size_t>(n)].push_back(static_cast<float>(std::exp(static_cast<double>(row[k] - mx)) / z));
                if (c.reached || step == o.steps) done[static_cast<size_t>(n)] = true;
            }
            all_done &= done[static_cast<size_t>(n)];
            for (int64_t k = 0; k < K; ++k)
                seed[static_cast<size_t>(n * K + k)] = static_cast<float>(std::exp(static_cast<double>(row[k] - mx)) / z) - (k == tgt ? 1.f : 0.f);
        }
        if (progress) progress(step, out);
        if (all_done) break;
        const Tensor g = t.gradient(from_vector(seed, Shape{N, K}, dev))[0];
        // x' <- clamp(x' - lr (g + (2 lambda) (x' - x) [+ (2 theta) (x' - proto)]), low, high) on the rows still
        // searching, run by run of consecutive ones, in place (the trace has its own copy of its input).
        for (int64_t n0 = 0; n0 < N;) {
            if (done[static_cast<size_t>(n0)]) {
                ++n0;
                continue;
            }
            int64_t n1 = n0;
            while (n1 < N && !done[static_cast<size_t>(n1)]) ++n1;
            const int64_t off = n0 * per, len = (n1 - n0) * per;
            float* dd = d.data<float>() + off;
            be.sub(len, cur.data<float>() + off, x.data<float>() + off, dd);
            be.scale(len, 2.f * o.distance_weight, dd, dd);
            be.add(len, g.data<float>() + off, dd, dd);
            if (with_prototypes) {
                float* ee = e.data<float>() + off;
                be.sub(len, cur.data<float>() + off, prototypes.data<float>() + off, ee);
                be.scale(len, 2.f * o.prototype_weight, ee, ee);
                be.add(len, dd, ee, dd);
            }
            be.scale(len, o.lr, dd, dd);
            be.sub(len, cur.data<float>() + off, dd, dd);
            be.clamp(len, o.low, o.high, dd, cur.data<float>() + off);
            n0 = n1;
        }
    }
    // ||x' - x||_2 per sample: squared differences summed on the backend, the square roots on the host.
    Tensor sq(Shape{N}, DType::Float32, dev);
    be.sub(x.numel(), cur.data<float>(), x.data<float>(), d.data<float>());
    be.mul(x.numel(), d.data<float>(), d.data<float>(), d.data<float>());
    be.sum_dim(N, per, 1, d.data<float>(), sq.data<float>());
    const auto sqv = sq.to_vector<float>();
    for (int64_t n = 0; n < N; ++n) {
        Counterfactual& c = out[static_cast<size_t>(n)];
        c.distance = std::sqrt(static_cast<double>(sqv[static_cast<size_t>(n)]));
        c.input = cur.narrow(n, 1).clone().view(Shape{x.dim(1), x.dim(2), x.dim(3)});
        auto& rows = path[static_cast<size_t>(n)];
        c.probabilities = from_vector(rows, Shape{static_cast<int64_t>(rows.size()) / K, K});
    }
    return out;
}

}  // namespace gb::explain
