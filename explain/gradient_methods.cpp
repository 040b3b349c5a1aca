#include "explain/gradient_methods.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/factory.h"
#include "kernels/backend.h"

namespace gb::explain {

namespace {

// Gradient of sum(seed * model(x)) at x, with x's own forward pass.
Tensor batch_gradient(layers::Layer& model, const Tensor& x, const Tensor& seed) {
    Trace t(model, x);
    return t.gradient(seed)[0];
}

// `t` written `reps` times one after another into a tensor of `shape` (the backend's copy, on t's device).
Tensor repeated(const Tensor& t, int64_t reps, const Shape& shape, Device device) {
    const Tensor src = t.to(device);
    Tensor out(shape, DType::Float32, device);
    auto& be = kernels::backend_for(device);
    for (int64_t r = 0; r < reps; ++r) be.copy(src.numel(), src.data<float>(), out.data<float>() + r * src.numel());
    return out;
}

// Rows of `seed` repeated `reps` times (step-major: all samples for step 0, then step 1 ...).
Tensor repeat_rows(const Tensor& seed, int64_t reps) {
    return repeated(seed, reps, Shape{reps * seed.dim(0), seed.dim(1)}, seed.device());
}

Tensor baseline_like(const Tensor& baseline, const Tensor& x) {
    if (!baseline.defined()) return zeros(x.shape(), DType::Float32, x.device());
    if (baseline.shape() == x.shape()) return baseline.to(x.device());
    const Shape one{x.dim(1), x.dim(2), x.dim(3)};
    GB_CHECK(baseline.shape() == one || (baseline.rank() == 4 && baseline.dim(0) == 1 &&
                                         baseline.numel() == one.numel()),
             "explain: baseline of shape ", baseline.shape().str(), " fits neither one input ", one.str(),
             " nor the batch ", x.shape().str());
    return repeated(baseline, x.dim(0), x.shape(), x.device());
}

// Legendre nodes and weights on [-1, 1] by Newton's method (ascending, like numpy's leggauss): n scalars, each a
// sequential iteration, so on the host.
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

}  // namespace

Tensor gradient_map(const Trace& trace, const Tensor& seed) { return trace.gradient(seed)[0]; }

Tensor saliency(const Trace& trace, const Tensor& seed) {
    const Tensor g = gradient_map(trace, seed);
    const int64_t N = g.dim(0), C = g.dim(1), HW = g.dim(2) * g.dim(3), all = g.numel();
    auto& be = kernels::backend_for(g.device());
    const float inf = std::numeric_limits<float>::infinity();
    // |g| = max(g, 0) - min(g, 0)
    Tensor a(g.shape(), DType::Float32, g.device()), neg(g.shape(), DType::Float32, g.device());
    be.clamp(all, 0.f, inf, g.data<float>(), a.data<float>());
    be.clamp(all, -inf, 0.f, g.data<float>(), neg.data<float>());
    be.sub(all, a.data<float>(), neg.data<float>(), a.data<float>());
    // out = max(0, |g_0|, ..., |g_C-1|), channel by channel as std::max does: channel c replaces the running
    // maximum m exactly where |g_c| - m > 0 (never for NaN), by m - mask(m) + mask(|g_c|), which is exact. With
    // one channel the images are one contiguous run.
    Tensor out(Shape{N, 1, g.dim(2), g.dim(3)}, DType::Float32, g.device());
    be.fill(out.numel(), 0.f, out.data<float>());
    const int64_t runs = C == 1 ? 1 : N, len = C == 1 ? N * HW : HW;
    Tensor scratch(Shape{2 * len}, DType::Float32, g.device());
    for (int64_t n = 0; n < runs; ++n)
        for (int64_t c = 0; c < C; ++c) {
            float* m = out.data<float>() + n * len;
            const float* v = a.data<float>() + (n * C + c) * len;
            float *z = scratch.data<float>(), *sel = scratch.data<float>() + len;
            be.sub(len, v, m, z);
            be.lrp_mask_sign(len, +1, z, m, sel);
            be.sub(len, m, sel, m);
            be.lrp_mask_sign(len, +1, z, v, sel);
            be.add(len, m, sel, m);
        }
    return out;
}

Tensor gradient_x_input(const Trace& trace, const Tensor& seed) {
    const Tensor g = gradient_map(trace, seed);
    Tensor out(g.shape(), DType::Float32, g.device());
    kernels::backend_for(g.device()).mul(g.numel(), g.data<float>(), trace.input().data<float>(), out.data<float>());
    return out;
}

Tensor guided_backprop(const Trace& trace, const Tensor& seed) {
    return trace.modified_gradient(Composite::guided_backprop(), seed)[0];
}

Tensor deconvnet(const Trace& trace, const Tensor& seed) { return trace.modified_gradient(Composite::deconvnet(), seed)[0]; }

Tensor smoothgrad(const Trace& trace, const std::vector<Target>& targets, const SmoothGradOptions& o) {
    GB_CHECK(o.samples > 0 && o.noise >= 0.f && o.batch > 0, "SmoothGrad: needs samples > 0, noise >= 0, batch > 0");
    const Tensor& x = trace.input();
    const Tensor seed = trace.seed(targets);
    const int64_t N = x.dim(0), M = x.numel(), per = M / N;
    const Device dev = x.device();
    auto& be = kernels::backend_for(dev);
    // sigma_n = noise * (max x_n - min x_n), one per sample.
    Tensor lo(Shape{N}, DType::Float32, dev), hi(Shape{N}, DType::Float32, dev), sigma(Shape{N}, DType::Float32, dev);
    be.row_min_max(N, per, x.data<float>(), lo.data<float>(), hi.data<float>());
    be.sub(N, hi.data<float>(), lo.data<float>(), sigma.data<float>());
    be.scale(N, o.noise, sigma.data<float>(), sigma.data<float>());
    const int64_t reps_per_batch = std::min(o.samples, std::max<int64_t>(1, o.batch / N));
    const Tensor x_rows = repeated(x, reps_per_batch, Shape{reps_per_batch * N, x.dim(1), x.dim(2), x.dim(3)}, dev);
    const Tensor sigma_rows = repeated(sigma, reps_per_batch, Shape{reps_per_batch * N}, dev);
    // Noisy copy r of element i is x_i + Generator(seed).normal(0, sigma_n): draw r * M + i of the stream,
    // the numbers the host loop drew before, now drawn by the backend (add_normal_noise).
    Generator gen(o.seed);
    Tensor total(x.shape(), DType::Float32, dev), partial;
    for (int64_t done = 0; done < o.samples; done += reps_per_batch) {  // batches in order: the stream is sequential
        const int64_t reps = std::min(reps_per_batch, o.samples - done);
        Tensor noisy(Shape{reps * N, x.dim(1), x.dim(2), x.dim(3)}, DType::Float32, dev);
        be.copy(reps * M, x_rows.data<float>(), noisy.data<float>());
        be.add_normal_noise(reps * N, per, gen.seed(), gen.reserve(2 * static_cast<uint64_t>(reps * M)),
                            sigma_rows.data<float>(), noisy.data<float>());
        const Tensor g = batch_gradient(trace.model(), noisy, repeat_rows(seed, reps));
        // The batch's gradients summed over its copies, then added to the running total, in float (the host
        // loop kept double). The CPU's sum_dim sums a batch in double and rounds once, so when the samples fit
        // one batch the mean differs from the double one only by the final scaling's rounding (an ulp or two).
        // No stored reference covers SmoothGrad; the zero-noise test bounds it against the gradient (1e-6).
        if (done == 0) {
            be.sum_dim(1, reps, M, g.data<float>(), total.data<float>());
            continue;
        }
        if (!partial.defined()) partial = Tensor(x.shape(), DType::Float32, dev);
        be.sum_dim(1, reps, M, g.data<float>(), partial.data<float>());
        be.add(M, total.data<float>(), partial.data<float>(), total.data<float>());
    }
    be.scale(M, 1.f / static_cast<float>(o.samples), total.data<float>(), total.data<float>());
    return total;
}

namespace {
const std::pair<IntegrationRule, const char*> kIntegrationRules[] = {
    {IntegrationRule::RiemannLeft, "riemann_left"},         {IntegrationRule::RiemannRight, "riemann_right"},
    {IntegrationRule::RiemannMiddle, "riemann_middle"},     {IntegrationRule::RiemannTrapezoid, "riemann_trapezoid"},
    {IntegrationRule::GaussLegendre, "gausslegendre"}};
}  // namespace

IntegrationRule parse_integration_rule(const std::string& name) {
    for (const auto& [rule, n] : kIntegrationRules)
        if (name == n) return rule;
    GB_FAIL("unknown integration rule '", name,
            "' (expected riemann_left, riemann_right, riemann_middle, riemann_trapezoid or gausslegendre)");
}

std::string integration_rule_name(IntegrationRule rule) {
    for (const auto& [r, n] : kIntegrationRules)
        if (r == rule) return n;
    return "?";
}

std::vector<std::string> integration_rule_names() {
    std::vector<std::string> out;
    for (const auto& [r, n] : kIntegrationRules) out.push_back(n);
    return out;
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
    auto& be = kernels::backend_for(x.device());
    Tensor diff(x.shape(), DType::Float32, x.device());  // x - x0
    be.sub(M, x.data<float>(), x0.data<float>(), diff.data<float>());
    // sum_k w_k grad(x0 + a_k (x - x0)), accumulated on the backend in float as Captum does (it sums the
    // weighted float32 gradients with torch.sum); the host loop kept double. Measured against the stored
    // Captum references (per-sample relative, tests/data/README.md), each below a tenth of its tolerance:
    // Gauss-Legendre n=50 3.9e-6 on vgg-mini, 3.2e-4 on vgg-mini-bn; trapezoid n=32 1.3e-5 and 1.8e-4.
    Tensor total = zeros(x.shape(), DType::Float32, x.device());
    const int64_t steps_per_batch = std::max<int64_t>(1, o.batch / N);
    for (int64_t k0 = 0; k0 < o.steps; k0 += steps_per_batch) {
        const int64_t ks = std::min(steps_per_batch, o.steps - k0);
        // Step k's inputs x0 + a_k (x - x0), on the backend.
        Tensor scaled(Shape{ks * N, x.dim(1), x.dim(2), x.dim(3)}, DType::Float32, x.device());
        for (int64_t k = 0; k < ks; ++k) {
            float* step = scaled.data<float>() + k * M;
            be.scale(M, static_cast<float>(alphas[static_cast<size_t>(k0 + k)]), diff.data<float>(), step);
            be.add(M, x0.data<float>(), step, step);
        }
        const Tensor g = batch_gradient(trace.model(), scaled, repeat_rows(seed, ks));
        for (int64_t k = 0; k < ks; ++k)
            be.axpy(M, weights[static_cast<size_t>(k0 + k)], g.data<float>() + k * M, total.data<float>());
    }
    Tensor out(x.shape(), DType::Float32, x.device());
    be.mul(M, total.data<float>(), diff.data<float>(), out.data<float>());
    return out;
}

Tensor deeplift(const Trace& trace, const Tensor& seed, const Tensor& baseline) {
    const Tensor& x = trace.input();
    const Tensor x0 = baseline_like(baseline, x);
    const Trace base(trace.model(), x0);
    // Each rectifier rescales by its own reference activation, the baseline's at that layer.
    Composite rules("deeplift");
    rules.canonize(Canonizer::None);
    for (const auto& [path, layer] : trace.model().named_layers())
        if (layer->has(layers::Capability::Rectifier))
            rules.by_name(path, layers::Rule::deeplift_rescale(base.layer_input(path), base.layer_output(path)));
    const Tensor g = trace.modified_gradient(rules, seed)[0];
    Tensor out(x.shape(), DType::Float32, x.device());
    auto& be = kernels::backend_for(x.device());
    be.sub(x.numel(), x.data<float>(), x0.data<float>(), out.data<float>());
    be.mul(x.numel(), out.data<float>(), g.data<float>(), out.data<float>());
    return out;
}

}  // namespace gb::explain
