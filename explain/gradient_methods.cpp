#include "explain/gradient_methods.h"

#include <algorithm>
#include <cmath>

#include "core/factory.h"
#include "kernels/backend.h"

namespace gb::explain {

namespace {

// Host copies for the per-element work of the less frequent methods.
std::vector<float> host(const Tensor& t) { return t.to_vector<float>(); }

// Gradient of sum(seed * model(x)) at x, with x's own forward pass.
Tensor batch_gradient(layers::Layer& model, const Tensor& x, const Tensor& seed) {
    Trace t(model, x);
    return t.gradient(seed)[0];
}

// Rows of `seed` repeated `reps` times (step-major: all samples for step 0, then step 1 ...).
Tensor repeat_rows(const Tensor& seed, int64_t reps) {
    const int64_t N = seed.dim(0), K = seed.dim(1);
    const auto s = host(seed);
    std::vector<float> out(static_cast<size_t>(reps * N * K));
    for (int64_t r = 0; r < reps; ++r) std::copy(s.begin(), s.end(), out.begin() + r * N * K);
    return from_vector(out, Shape{reps * N, K}, seed.device());
}

Tensor baseline_like(const Tensor& baseline, const Tensor& x) {
    if (!baseline.defined()) return zeros(x.shape(), DType::Float32, x.device());
    if (baseline.shape() == x.shape()) return baseline.to(x.device());
    const Shape one{x.dim(1), x.dim(2), x.dim(3)};
    GB_CHECK(baseline.shape() == one || (baseline.rank() == 4 && baseline.dim(0) == 1 &&
                                         baseline.numel() == one.numel()),
             "explain: baseline of shape ", baseline.shape().str(), " fits neither one input ", one.str(),
             " nor the batch ", x.shape().str());
    const auto b = host(baseline);
    std::vector<float> out(static_cast<size_t>(x.numel()));
    for (int64_t n = 0; n < x.dim(0); ++n) std::copy(b.begin(), b.end(), out.begin() + n * one.numel());
    return from_vector(out, x.shape(), x.device());
}

// Legendre nodes and weights on [-1, 1] by Newton's method (ascending, like numpy's leggauss).
void gauss_legendre(int64_t n, std::vector<double>& x, std::vector<double>& w) {
    x.assign(static_cast<size_t>(n), 0.0);
    w.assign(static_cast<size_t>(n), 0.0);
    for (int64_t i = 0; i < n; ++i) {
        double z = std::cos(M_PI * (static_cast<double>(i) + 0.75) / (static_cast<double>(n) + 0.5)), dp = 0;
        for (int it = 0; it < 100; ++it) {
            double p0 = 1, p1 = z;
            for (int64_t k = 2; k <= n; ++k) {
                const double p2 = ((2.0 * k - 1) * z * p1 - (k - 1.0) * p0) / static_cast<double>(k);
                p0 = p1;
                p1 = p2;
            }
            if (n == 1) p0 = 1;
            dp = static_cast<double>(n) * (z * p1 - p0) / (z * z - 1);
            const double dz = p1 / dp;
            z -= dz;
            if (std::fabs(dz) < 1e-15) break;
        }
        x[static_cast<size_t>(n - 1 - i)] = z;
        w[static_cast<size_t>(n - 1 - i)] = 2.0 / ((1 - z * z) * dp * dp);
    }
}

// ReLU layer nodes in `trace`: the layer path, or "" for any other node.
std::string relu_path(const Trace& trace, const autograd::Node& n) {
    const layers::Layer* l = node_layer(n);
    return l && l->type() == "ReLU" ? trace.path_of(l) : std::string();
}

}  // namespace

Tensor gradient_map(const Trace& trace, const Tensor& seed) { return trace.gradient(seed)[0]; }

Tensor saliency(const Trace& trace, const Tensor& seed) {
    const Tensor g = gradient_map(trace, seed);
    const int64_t N = g.dim(0), C = g.dim(1), HW = g.dim(2) * g.dim(3);
    const auto gv = host(g);
    std::vector<float> out(static_cast<size_t>(N * HW), 0.f);
    for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < HW; ++i) {
                float& o = out[static_cast<size_t>(n * HW + i)];
                o = std::max(o, std::fabs(gv[static_cast<size_t>((n * C + c) * HW + i)]));
            }
    return from_vector(out, Shape{N, 1, g.dim(2), g.dim(3)}, g.device());
}

Tensor gradient_x_input(const Trace& trace, const Tensor& seed) {
    const Tensor g = gradient_map(trace, seed);
    Tensor out(g.shape(), DType::Float32, g.device());
    kernels::backend_for(g.device()).mul(g.numel(), g.data<float>(), trace.input().data<float>(), out.data<float>());
    return out;
}

Tensor guided_backprop(const Trace& trace, const Tensor& seed) {
    return trace.modified_gradient(seed, [&trace](autograd::Node& n, const Tensor& g) -> std::optional<std::vector<Tensor>> {
        const std::string path = relu_path(trace, n);
        if (path.empty()) return std::nullopt;
        const auto y = host(trace.layer_output(path)), gv = host(g);
        std::vector<float> dx(gv.size());
        for (size_t i = 0; i < gv.size(); ++i) dx[i] = y[i] > 0.f && gv[i] > 0.f ? gv[i] : 0.f;
        return std::vector<Tensor>{from_vector(dx, g.shape(), g.device())};
    })[0];
}

Tensor smoothgrad(const Trace& trace, const std::vector<Target>& targets, const SmoothGradOptions& o) {
    GB_CHECK(o.samples > 0 && o.noise >= 0.f && o.batch > 0, "SmoothGrad: needs samples > 0, noise >= 0, batch > 0");
    const Tensor& x = trace.input();
    const Tensor seed = trace.seed(targets);
    const int64_t N = x.dim(0), per = x.numel() / N;
    const auto xv = host(x);
    std::vector<float> sigma(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) {
        const auto b = xv.begin() + n * per;
        const auto [lo, hi] = std::minmax_element(b, b + per);
        sigma[static_cast<size_t>(n)] = o.noise * (*hi - *lo);
    }
    Generator gen(o.seed);
    std::vector<double> total(static_cast<size_t>(x.numel()), 0.0);
    const int64_t reps_per_batch = std::max<int64_t>(1, o.batch / N);
    for (int64_t done = 0; done < o.samples; done += reps_per_batch) {
        const int64_t reps = std::min(reps_per_batch, o.samples - done);
        std::vector<float> noisy(static_cast<size_t>(reps * x.numel()));
        for (int64_t r = 0; r < reps; ++r)
            for (int64_t i = 0; i < x.numel(); ++i)
                noisy[static_cast<size_t>(r * x.numel() + i)] =
                    xv[static_cast<size_t>(i)] + gen.normal(0.f, sigma[static_cast<size_t>(i / per)]);
        const Shape s{reps * N, x.dim(1), x.dim(2), x.dim(3)};
        const auto g = host(batch_gradient(trace.model(), from_vector(noisy, s, x.device()), repeat_rows(seed, reps)));
        for (int64_t r = 0; r < reps; ++r)
            for (int64_t i = 0; i < x.numel(); ++i) total[static_cast<size_t>(i)] += g[static_cast<size_t>(r * x.numel() + i)];
    }
    std::vector<float> out(total.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(total[i] / static_cast<double>(o.samples));
    return from_vector(out, x.shape(), x.device());
}

IntegrationRule parse_integration_rule(const std::string& name) {
    if (name == "riemann_left") return IntegrationRule::RiemannLeft;
    if (name == "riemann_right") return IntegrationRule::RiemannRight;
    if (name == "riemann_middle") return IntegrationRule::RiemannMiddle;
    if (name == "riemann_trapezoid") return IntegrationRule::RiemannTrapezoid;
    if (name == "gausslegendre") return IntegrationRule::GaussLegendre;
    GB_FAIL("unknown integration rule '", name,
            "' (expected riemann_left, riemann_right, riemann_middle, riemann_trapezoid or gausslegendre)");
}

void integration_steps(IntegrationRule rule, int64_t n, std::vector<double>& alphas, std::vector<float>& weights) {
    GB_CHECK(n > 0, "Integrated Gradients: needs at least one step, got ", n);
    alphas.assign(static_cast<size_t>(n), 0.0);
    weights.assign(static_cast<size_t>(n), static_cast<float>(1.0 / static_cast<double>(n)));
    const double dn = static_cast<double>(n);
    switch (rule) {
        case IntegrationRule::RiemannLeft:
            for (int64_t k = 0; k < n; ++k) alphas[static_cast<size_t>(k)] = static_cast<double>(k) / dn;
            break;
        case IntegrationRule::RiemannRight:
            for (int64_t k = 0; k < n; ++k) alphas[static_cast<size_t>(k)] = static_cast<double>(k + 1) / dn;
            break;
        case IntegrationRule::RiemannMiddle:
            for (int64_t k = 0; k < n; ++k) alphas[static_cast<size_t>(k)] = (static_cast<double>(k) + 0.5) / dn;
            break;
        case IntegrationRule::RiemannTrapezoid:
            // Captum: alphas = linspace(0, 1, n), weights 1/n with the ends halved (they sum to (n-1)/n).
            for (int64_t k = 0; k < n; ++k) alphas[static_cast<size_t>(k)] = n > 1 ? static_cast<double>(k) / (dn - 1) : 0.0;
            weights.front() = weights.back() = static_cast<float>(1.0 / (2.0 * dn));
            break;
        case IntegrationRule::GaussLegendre: {
            std::vector<double> x, w;
            gauss_legendre(n, x, w);
            for (int64_t k = 0; k < n; ++k) {
                alphas[static_cast<size_t>(k)] = 0.5 * (1.0 + x[static_cast<size_t>(k)]);
                weights[static_cast<size_t>(k)] = static_cast<float>(0.5 * w[static_cast<size_t>(k)]);
            }
            break;
        }
    }
}

Tensor integrated_gradients(const Trace& trace, const std::vector<Target>& targets,
                            const IntegratedGradientsOptions& o) {
    GB_CHECK(o.batch > 0, "Integrated Gradients: batch must be positive");
    std::vector<double> alphas;
    std::vector<float> weights;
    integration_steps(o.rule, o.steps, alphas, weights);
    const Tensor& x = trace.input();
    const Tensor x0 = baseline_like(o.baseline, x);
    const Tensor seed = trace.seed(targets);
    const int64_t N = x.dim(0), M = x.numel();
    const auto xv = host(x), bv = host(x0);
    std::vector<double> total(static_cast<size_t>(M), 0.0);
    const int64_t steps_per_batch = std::max<int64_t>(1, o.batch / N);
    for (int64_t k0 = 0; k0 < o.steps; k0 += steps_per_batch) {
        const int64_t ks = std::min(steps_per_batch, o.steps - k0);
        std::vector<float> scaled(static_cast<size_t>(ks * M));
        for (int64_t k = 0; k < ks; ++k) {
            const float a = static_cast<float>(alphas[static_cast<size_t>(k0 + k)]);
            for (int64_t i = 0; i < M; ++i)
                scaled[static_cast<size_t>(k * M + i)] = bv[static_cast<size_t>(i)] + a * (xv[static_cast<size_t>(i)] - bv[static_cast<size_t>(i)]);
        }
        const Shape s{ks * N, x.dim(1), x.dim(2), x.dim(3)};
        const auto g = host(batch_gradient(trace.model(), from_vector(scaled, s, x.device()), repeat_rows(seed, ks)));
        for (int64_t k = 0; k < ks; ++k)
            for (int64_t i = 0; i < M; ++i)
                total[static_cast<size_t>(i)] += static_cast<double>(weights[static_cast<size_t>(k0 + k)]) * g[static_cast<size_t>(k * M + i)];
    }
    std::vector<float> out(static_cast<size_t>(M));
    for (int64_t i = 0; i < M; ++i)
        out[static_cast<size_t>(i)] = static_cast<float>(total[static_cast<size_t>(i)] * (xv[static_cast<size_t>(i)] - bv[static_cast<size_t>(i)]));
    return from_vector(out, x.shape(), x.device());
}

Tensor deeplift(const Trace& trace, const Tensor& seed, const Tensor& baseline) {
    const Tensor& x = trace.input();
    const Tensor x0 = baseline_like(baseline, x);
    const Trace base(trace.model(), x0);
    const Tensor g = trace.modified_gradient(seed, [&](autograd::Node& n, const Tensor& gout) -> std::optional<std::vector<Tensor>> {
        const std::string path = relu_path(trace, n);
        if (path.empty()) return std::nullopt;
        const auto a = host(trace.layer_input(path)), a0 = host(base.layer_input(path)), gv = host(gout);
        std::vector<float> dx(gv.size());
        for (size_t i = 0; i < gv.size(); ++i) {
            const float d = a[i] - a0[i];
            // Rescale multiplier; the plain derivative where the difference vanishes (Captum's 1e-10).
            const float m = std::fabs(d) < 1e-10f ? (a[i] > 0.f ? 1.f : 0.f)
                                                  : (std::max(a[i], 0.f) - std::max(a0[i], 0.f)) / d;
            dx[i] = gv[i] * m;
        }
        return std::vector<Tensor>{from_vector(dx, gout.shape(), gout.device())};
    })[0];
    const auto gv = host(g), xv = host(x), bv = host(x0);
    std::vector<float> out(gv.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = (xv[i] - bv[i]) * gv[i];
    return from_vector(out, x.shape(), x.device());
}

}  // namespace gb::explain
