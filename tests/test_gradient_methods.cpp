// explain/gradient_methods: saliency, gradient x input, Integrated Gradients
// (Gauss-Legendre and trapezoid), DeepLIFT and guided backprop against Captum
// 0.8.0 on both reference models (tests/data/vgg_mini*.gradient.safetensors); DeconvNet
// and guided backprop in closed form on a two-layer network; SmoothGrad against
// its definition written as a naive loop.
#include <algorithm>

#include "explain/gradient_methods.h"
#include "layers/layers.h"
#include "models/checkpoint.h"
#include "reference.h"
#include "temp_dir.h"

using namespace gb;
using namespace gb::testing;
using namespace gb::explain;

namespace {
void check_model(const std::string& model_name, const std::string& prefix) {
    const io::SafeTensors data = io::load_safetensors(data_file(prefix + ".data.safetensors"));
    const io::SafeTensors ref = io::load_safetensors(data_file(prefix + ".gradient.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file(prefix + ".model.safetensors"), model_name);
    Trace trace(*ck.model, data.at("input"));
    const auto targets = targets_of(data.at("target"));
    const Tensor seed = trace.seed(targets);
    auto check = [&](const Tensor& got, const std::string& key) {
        check_reference(got, ref.at(key), reference_tol(ref, key), prefix + " " + key);
        if (ref.metadata.count("tol99." + key))
            check_reference_99(got, ref.at(key), std::stod(ref.metadata.at("tol99." + key)), prefix + " " + key);
    };
    check(gradient_map(trace, seed), "grad");
    check(saliency(trace, seed), "saliency");
    check(gradient_x_input(trace, seed), "input_x_gradient");
    check(guided_backprop(trace, seed), "guided_backprop");
    check(deeplift(trace, seed), "deeplift");
    IntegratedGradientsOptions gl;
    gl.steps = 50;
    gl.rule = IntegrationRule::GaussLegendre;
    check(integrated_gradients(trace, targets, gl), "ig.gausslegendre.n50");
    IntegratedGradientsOptions tz;
    tz.steps = 32;
    tz.rule = IntegrationRule::RiemannTrapezoid;
    check(integrated_gradients(trace, targets, tz), "ig.riemann_trapezoid.n32");
}
}  // namespace

TEST_CASE("gradient family matches Captum on vgg-mini") { check_model("vgg-mini", "vgg_mini"); }
TEST_CASE("gradient family matches Captum on vgg-mini-bn") { check_model("vgg-mini-bn", "vgg_mini_bn"); }

TEST_CASE("integration rules: Captum's step fractions and weights") {
    std::vector<double> a;
    std::vector<float> w;
    integration_steps(IntegrationRule::GaussLegendre, 3, a, w);
    // 3-point Gauss-Legendre: nodes 0, +-sqrt(3/5), weights 5/9, 8/9, 5/9 on [-1, 1].
    CHECK(a[0] == doctest::Approx(0.5 * (1 - std::sqrt(0.6))));
    CHECK(a[1] == doctest::Approx(0.5));
    CHECK(w[1] == doctest::Approx(4.0 / 9.0));
    integration_steps(IntegrationRule::RiemannTrapezoid, 4, a, w);
    CHECK(a == std::vector<double>{0, 1.0 / 3, 2.0 / 3, 1});
    CHECK(w == std::vector<float>{0.125f, 0.25f, 0.25f, 0.125f});
    CHECK_THROWS_WITH_AS(parse_integration_rule("simpson"), doctest::Contains("unknown integration rule"), Error);
}

TEST_CASE("SmoothGrad with zero noise is the gradient; completeness of IG") {
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini.data.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini.model.safetensors"), "vgg-mini");
    Trace trace(*ck.model, data.at("input"));
    const std::vector<Target> t{Target::predicted()};
    SmoothGradOptions o;
    o.samples = 3;
    o.noise = 0.f;
    CHECK(max_abs_diff(smoothgrad(trace, t, o).to_vector<float>(), gradient_map(trace, trace.seed(t)).to_vector<float>()) < 1e-6f);
    o.noise = 0.2f;
    const Tensor noisy = smoothgrad(trace, t, o);
    CHECK(noisy.to_vector<float>() == smoothgrad(trace, t, o).to_vector<float>());  // seeded
    // Completeness (Sundararajan et al.): sum of IG ~ f(x) - f(0); with 200 Gauss-Legendre steps
    // within 2% of |f(x)| (max-pool switching makes the path integrand piecewise smooth).
    IntegratedGradientsOptions ig;
    ig.steps = 200;
    const auto a = integrated_gradients(trace, t, ig).to_vector<float>();
    Trace zero(*ck.model, zeros(data.at("input").shape()));
    const auto lx = trace.logits().to_vector<float>(), l0 = zero.logits().to_vector<float>();
    const auto cls = resolve_classes(t, trace.logits());
    for (int64_t b = 0; b < 4; ++b) {
        double s = 0;
        for (int64_t i = 0; i < 784; ++i) s += a[static_cast<size_t>(b * 784 + i)];
        const size_t k = static_cast<size_t>(b * 10 + cls[static_cast<size_t>(b)]);
        CHECK(std::fabs(s - (lx[k] - l0[k])) <= 0.02 * std::fabs(lx[k]));
    }
}

TEST_CASE("SmoothGrad is the mean gradient at x + Generator noise scaled by each sample's range") {
    // Reference: the definition as a naive host loop (the computation SmoothGrad did on the host before it
    // ran on the backend): sigma_n = noise (max x_n - min x_n), copy r of element i is x_i +
    // Generator(seed).normal(0, sigma_n) drawn in order, one gradient per copy, the mean in double.
    // Tolerance 1e-5 of the largest |value|: the float sums and batched forwards round differently.
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini.data.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini.model.safetensors"), "vgg-mini");
    const Tensor x = data.at("input");
    Trace trace(*ck.model, x);
    const std::vector<Target> t{Target::predicted()};
    SmoothGradOptions o;
    o.samples = 5;
    o.noise = 0.2f;
    o.seed = 42;
    o.batch = 8;  // two copies of the 4 images per forward: batches of 2, 2, 1
    const int64_t N = x.dim(0), per = x.numel() / N;
    const auto xv = x.to_vector<float>();
    std::vector<float> sigma(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) {
        const auto [lo, hi] = std::minmax_element(xv.begin() + n * per, xv.begin() + (n + 1) * per);
        sigma[static_cast<size_t>(n)] = o.noise * (*hi - *lo);
    }
    Generator gen(o.seed);
    std::vector<double> mean(xv.size(), 0.0);
    for (int64_t r = 0; r < o.samples; ++r) {
        std::vector<float> noisy = xv;
        for (size_t i = 0; i < noisy.size(); ++i) noisy[i] += gen.normal(0.f, sigma[i / static_cast<size_t>(per)]);
        Trace at(*ck.model, from_vector(noisy, x.shape()));
        const auto g = at.gradient(trace.seed(t))[0].to_vector<float>();
        for (size_t i = 0; i < g.size(); ++i) mean[i] += g[i] / static_cast<double>(o.samples);
    }
    const std::vector<float> want(mean.begin(), mean.end());
    const auto got = smoothgrad(trace, t, o).to_vector<float>();
    CHECK(max_abs_diff(got, want) <= 1e-5f * max_abs(want));
}

TEST_CASE("DeconvNet, guided backprop and saliency on Flatten-Linear-ReLU-Linear in closed form") {
    Generator g(11);
    layers::Sequential model;
    model.add(std::make_shared<layers::Flatten>());
    auto l1 = model.add(std::make_shared<layers::Linear>(8, 5, true, g));
    model.add(std::make_shared<layers::ReLU>());
    auto l2 = model.add(std::make_shared<layers::Linear>(5, 3, true, g));
    const Tensor x = rand_tensor(Shape{2, 2, 2, 2}, 12);
    Trace trace(model, x);
    const std::vector<Target> t{Target::of(1)};
    const auto got = deconvnet(trace, trace.seed(t)).to_vector<float>();
    const auto w1 = l1->weight().to_vector<float>(), w2 = l2->weight().to_vector<float>();
    for (int n = 0; n < 2; ++n)
        for (int i = 0; i < 8; ++i) {
            double s = 0;
            for (int j = 0; j < 5; ++j) s += w1[j * 8 + i] * std::max(w2[1 * 5 + j], 0.f);  // independent of x
            CHECK(got[n * 8 + i] == doctest::Approx(s).epsilon(1e-5));
        }
    // Saliency over these two input channels: max_c |gradient|, bit for bit.
    const auto grad = gradient_map(trace, trace.seed(t)).to_vector<float>(), sal = saliency(trace, trace.seed(t)).to_vector<float>();
    for (int n = 0; n < 2; ++n)
        for (int i = 0; i < 4; ++i) CHECK(sal[n * 4 + i] == std::max(std::fabs(grad[n * 8 + i]), std::fabs(grad[n * 8 + 4 + i])));
    // Guided backprop also masks by the ReLU's input: W1^T ([h > 0] max(W2^T e_t, 0)), h the hidden layer.
    const auto guided = guided_backprop(trace, trace.seed(t)).to_vector<float>();
    const auto h = trace.layer_output("2").to_vector<float>();
    for (int n = 0; n < 2; ++n)
        for (int i = 0; i < 8; ++i) {
            double s = 0;
            for (int j = 0; j < 5; ++j) s += h[n * 5 + j] > 0.f ? w1[j * 8 + i] * std::max(w2[1 * 5 + j], 0.f) : 0.0;
            CHECK(guided[n * 8 + i] == doctest::Approx(s).epsilon(1e-5));
        }
}
