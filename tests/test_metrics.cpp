// explain/metrics: every metric on a model whose right answer is known by
// construction. On a linear classifier f_c(x) = W_c x + b_c with a zero
// replacement, the score after deleting units is f_c(x) minus the sum of their
// W_c * x, so the exact map is the best possible most-relevant-first ordering
// and a random map's expected curve is f_c(x) - fraction * (f_c(x) - f_c(0)).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "explain/gradient_methods.h"
#include "explain/metrics.h"
#include "explain/perturbation.h"
#include "layers/activation.h"
#include "layers/conv2d.h"
#include "testing.h"
#include "toy_models.h"

using namespace gb;
using namespace gb::testing;
using namespace gb::explain;

namespace {

Tensor negate(const Tensor& t) {
    auto v = t.to_vector<float>();
    for (auto& a : v) a = -a;
    return from_vector(v, t.shape());
}

Explainer gradient_explainer() {
    return [](layers::Layer& model, const Tensor& x, const std::vector<int32_t>& classes) {
        Trace t(model, x);
        std::vector<Target> targets;
        for (int32_t c : classes) targets.push_back(Target::of(c));
        return gradient_map(t, t.seed(targets));
    };
}

// |Sobel| of the input: a map that never looks at the model.
Explainer edge_explainer() {
    return [](layers::Layer&, const Tensor& x, const std::vector<int32_t>&) {
        const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
        const auto v = x.to_vector<float>();
        std::vector<float> out(static_cast<size_t>(N * H * W), 0.f);
        auto at = [&](int64_t n, int64_t c, int64_t y, int64_t xx) {
            return v[static_cast<size_t>(((n * C + c) * H + std::clamp<int64_t>(y, 0, H - 1)) * W + std::clamp<int64_t>(xx, 0, W - 1))];
        };
        for (int64_t n = 0; n < N; ++n)
            for (int64_t c = 0; c < C; ++c)
                for (int64_t y = 0; y < H; ++y)
                    for (int64_t xx = 0; xx < W; ++xx) {
                        const float gx = at(n, c, y - 1, xx + 1) + 2 * at(n, c, y, xx + 1) + at(n, c, y + 1, xx + 1) -
                                         at(n, c, y - 1, xx - 1) - 2 * at(n, c, y, xx - 1) - at(n, c, y + 1, xx - 1);
                        const float gy = at(n, c, y + 1, xx - 1) + 2 * at(n, c, y + 1, xx) + at(n, c, y + 1, xx + 1) -
                                         at(n, c, y - 1, xx - 1) - 2 * at(n, c, y - 1, xx) - at(n, c, y - 1, xx + 1);
                        out[static_cast<size_t>((n * H + y) * W + xx)] += std::sqrt(gx * gx + gy * gy);
                    }
        return from_vector(out, Shape{N, 1, H, W});
    };
}

}  // namespace

TEST_CASE("perturbation curves on a linear model: closed form, exact map best, random map at the expected value") {
    LinearModel lm(1, 8, 8, 4, 21);
    const int64_t N = 64;
    const Tensor x = rand_tensor(Shape{N, 1, 8, 8}, 22, 0.f, 1.f);
    const Tensor logits = predict(*lm.model, x);
    std::vector<int32_t> classes(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) classes[static_cast<size_t>(n)] = static_cast<int32_t>(n % 4);
    const Tensor exact = lm.exact(x, classes);
    const auto ev = exact.to_vector<float>();
    const auto lv = logits.to_vector<float>();
    const auto f0 = predict(*lm.model, zeros(x.shape())).to_vector<float>();

    PerturbationOptions o;  // deletion, value 0, pixels, 16 steps of 4 pixels, logits
    o.batch = 100;

    SUBCASE("AOPC of the exact map equals the closed form (tolerance 1e-4 relative)") {
        double want = 0;
        for (int64_t n = 0; n < N; ++n) {
            std::vector<double> contrib(ev.begin() + n * 64, ev.begin() + (n + 1) * 64);
            std::sort(contrib.rbegin(), contrib.rend());
            double removed = 0, sum = 0;
            for (int64_t k = 0; k <= 16; ++k) {
                sum += removed;  // f(x_0) - f(x_k) = the contributions removed so far
                if (k < 16) removed += contrib[size_t(4 * k)] + contrib[size_t(4 * k + 1)] + contrib[size_t(4 * k + 2)] + contrib[size_t(4 * k + 3)];
            }
            want += sum / 17.0 / N;
        }
        const Curves c = perturbation_curves(*lm.model, x, exact, classes, o);
        CHECK(c.points == 17);
        CHECK(c.fraction.back() == 1.0);
        CHECK(aopc(c) == doctest::Approx(want).epsilon(1e-4));
        for (int64_t n = 0; n < N; ++n) {
            const size_t at = static_cast<size_t>(n * 4 + classes[static_cast<size_t>(n)]);
            CHECK(c.at(n, 0) == doctest::Approx(lv[at]).epsilon(1e-5));
            CHECK(c.at(n, 16) == doctest::Approx(f0[at]).epsilon(1e-5));
        }
    }
    SUBCASE("exact > random > reversed, and the random map near its expectation") {
        const double best = aopc(perturbation_curves(*lm.model, x, exact, classes, o));
        const double worst = aopc(perturbation_curves(*lm.model, x, negate(exact), classes, o));
        const double random = aopc(perturbation_curves(*lm.model, x, random_map(N, 8, 8, 5), classes, o));
        // E[AOPC] of a random order = mean_k fraction_k * mean_n (f(x) - f(0)) = 0.5 * mean_n (f(x) - f(0)).
        double expected = 0;
        for (int64_t n = 0; n < N; ++n) {
            const size_t at = static_cast<size_t>(n * 4 + classes[static_cast<size_t>(n)]);
            expected += 0.5 * (lv[at] - f0[at]) / N;
        }
        CHECK(best > random);
        CHECK(random > worst);
        // Tolerance: 20% of the best-to-worst range (measured here: 0.006 of the range;
        // the bound leaves room for other seeds of the random map).
        CHECK(std::fabs(random - expected) < 0.2 * (best - worst));
    }
    SUBCASE("deletion and insertion AUC on probabilities order exact, random, reversed") {
        o.probability = true;
        PerturbationOptions ins = o;
        ins.insertion = true;
        const Tensor rnd = random_map(N, 8, 8, 6);
        const double del_exact = area_under_curve(perturbation_curves(*lm.model, x, exact, classes, o));
        const double del_rand = area_under_curve(perturbation_curves(*lm.model, x, rnd, classes, o));
        const double ins_exact = area_under_curve(perturbation_curves(*lm.model, x, exact, classes, ins));
        const double ins_rand = area_under_curve(perturbation_curves(*lm.model, x, rnd, classes, ins));
        const double ins_worst = area_under_curve(perturbation_curves(*lm.model, x, negate(exact), classes, ins));
        CHECK(del_exact < del_rand);
        CHECK(ins_exact > ins_rand);
        CHECK(ins_rand > ins_worst);
        for (double a : {del_exact, del_rand, ins_exact, ins_rand}) CHECK((a > 0.0 && a < 1.0));
    }
    SUBCASE("the unperturbed points may come from given logits (a trace's), for deletion and insertion") {
        for (bool insertion : {false, true}) {
            o.insertion = insertion;
            const Curves a = perturbation_curves(*lm.model, x, exact, classes, o);
            const Curves b = perturbation_curves(*lm.model, x, exact, classes, o, logits);
            for (size_t i = 0; i < a.values.size(); ++i) CHECK(b.values[i] == doctest::Approx(a.values[i]).epsilon(1e-6));
        }
        CHECK_THROWS_WITH_AS(perturbation_curves(*lm.model, x, exact, classes, o, logits.narrow(0, 2)),
                             doctest::Contains("x_logits [2, 4] for 64 samples"), Error);
    }
    SUBCASE("patches: a unit is a square, the curve spans all of them") {
        o.patch = 3;  // 3x3 grid of units on 8x8 (the last row and column are 2 wide)
        o.steps = 3;
        const Curves c = perturbation_curves(*lm.model, x, exact, classes, o);
        CHECK(c.fraction == std::vector<double>{0.0, 3.0 / 9, 6.0 / 9, 1.0});
        CHECK(c.at(0, 3) == doctest::Approx(f0[static_cast<size_t>(classes[0])]).epsilon(1e-5));
    }
}

TEST_CASE("replacements: value, mean, blur, seeded noise") {
    const Tensor x = rand_tensor(Shape{2, 1, 9, 9}, 31, 0.f, 1.f);
    PerturbationOptions o;
    o.replacement = Replacement::Mean;
    const auto m = replacement_image(x, o).to_vector<float>();
    const auto xv = x.to_vector<float>();
    const double mean0 = std::accumulate(xv.begin(), xv.begin() + 81, 0.0) / 81;
    CHECK(m[5] == doctest::Approx(mean0).epsilon(1e-6));
    o.replacement = Replacement::Blur;
    const Tensor flat = full(Shape{1, 1, 9, 9}, 0.25f);
    for (float v : replacement_image(flat, o).to_vector<float>()) CHECK(v == doctest::Approx(0.25f).epsilon(1e-6));
    o.replacement = Replacement::Noise;
    o.noise_low = -1.f;
    o.noise_high = 2.f;
    const auto n1 = replacement_image(x, o).to_vector<float>();
    CHECK(n1 == replacement_image(x, o).to_vector<float>());
    for (float v : n1) CHECK((v >= -1.f && v < 2.f));
    CHECK(parse_replacement("blur") == Replacement::Blur);
    CHECK_THROWS_WITH_AS(parse_replacement("zero"), doctest::Contains("unknown replacement 'zero'"), Error);
}

TEST_CASE("blur replacement: the separable Gaussian with clamped edges of a naive loop") {
    // Reference: per plane, rows then columns, sum_i k_i x[clamp(p + i)] in double with
    // k_i = exp(-i^2 / (2 sigma^2)) / sum, |i| <= ceil(3 sigma). Tolerance 1e-5 (float32 GEMMs).
    const int64_t planes = 3, H = 7, W = 11;
    const Tensor x = rand_tensor(Shape{1, planes, H, W}, 33, 0.f, 1.f);
    const auto xv = x.to_vector<float>();
    for (float sigma : {0.7f, 2.f, 5.f}) {
        CAPTURE(sigma);
        const int64_t r = static_cast<int64_t>(std::ceil(3.f * sigma));
        std::vector<double> k;
        double ks = 0;
        for (int64_t i = -r; i <= r; ++i) k.push_back(std::exp(-0.5 * double(i * i) / (sigma * sigma))), ks += k.back();
        std::vector<double> tmp(xv.size()), want(xv.size());
        for (int64_t p = 0; p < planes; ++p)
            for (int64_t y = 0; y < H; ++y)
                for (int64_t xx = 0; xx < W; ++xx) {
                    double s = 0;
                    for (int64_t i = -r; i <= r; ++i) s += k[size_t(i + r)] / ks * xv[size_t((p * H + y) * W + std::clamp<int64_t>(xx + i, 0, W - 1))];
                    tmp[size_t((p * H + y) * W + xx)] = s;
                }
        for (int64_t p = 0; p < planes; ++p)
            for (int64_t y = 0; y < H; ++y)
                for (int64_t xx = 0; xx < W; ++xx) {
                    double s = 0;
                    for (int64_t i = -r; i <= r; ++i) s += k[size_t(i + r)] / ks * tmp[size_t((p * H + std::clamp<int64_t>(y + i, 0, H - 1)) * W + xx)];
                    want[size_t((p * H + y) * W + xx)] = s;
                }
        PerturbationOptions o;
        o.replacement = Replacement::Blur;
        o.blur_sigma = sigma;
        const auto got = replacement_image(x, o).to_vector<float>();
        for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-5));
    }
    PerturbationOptions o;
    o.replacement = Replacement::Blur;
    o.blur_sigma = 2000.f;
    CHECK_THROWS_WITH_AS(replacement_image(x, o), doctest::Contains("sigma must be in"), Error);
}

TEST_CASE("rank units: most relevant first, ties in a seeded order") {
    const Tensor m = from_vector(std::vector<float>{0, 5, 5, 1}, Shape{1, 1, 2, 2});
    const auto a = rank_units(m, 0, 1, 0);
    CHECK(((a[0] == 1 && a[1] == 2) || (a[0] == 2 && a[1] == 1)));
    CHECK(a[2] == 3);
    CHECK(a[3] == 0);
    CHECK(rank_units(m, 0, 2, 0) == std::vector<int64_t>{0});
}

TEST_CASE("Spearman and SSIM against closed forms") {
    CHECK(spearman({1, 2, 3, 4}, {10, 20, 30, 400}) == doctest::Approx(1.0));
    CHECK(spearman({1, 2, 3, 4}, {4, 3, 2, 1}) == doctest::Approx(-1.0));
    // Average ranks for ties: scipy.stats.spearmanr([1,2,2,3],[1,3,2,4]) = 0.9486832980505138.
    CHECK(spearman({1, 2, 2, 3}, {1, 3, 2, 4}) == doctest::Approx(0.9486832980505138).epsilon(1e-12));
    CHECK(spearman({1, 1, 1}, {1, 2, 3}) == 0.0);
    const auto img = rand_tensor(Shape{10, 12}, 41, 0.f, 1.f).to_vector<float>();
    CHECK(ssim(img, img, 10, 12) == doctest::Approx(1.0).epsilon(1e-12));
    // Two constant images a, b: no variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = 0.01^2.
    const std::vector<float> a(64, 0.2f), b(64, 0.6f);
    CHECK(ssim(a, b, 8, 8) == doctest::Approx((2 * 0.2 * 0.6 + 1e-4) / (0.04 + 0.36 + 1e-4)).epsilon(1e-6));
    std::vector<float> noisy(img);
    for (size_t i = 0; i < noisy.size(); ++i) noisy[i] = 1.f - noisy[i];
    CHECK(ssim(img, noisy, 10, 12) < 0.0);
    CHECK_THROWS_WITH_AS(ssim(a, b, 4, 16), doctest::Contains("at least 7x7"), Error);
}

TEST_CASE("randomisation check: the gradient follows the weights, an edge detector does not") {
    auto net = std::make_shared<layers::Sequential>();
    Generator g(51);
    net->add(std::make_shared<layers::Conv2d>(1, 4, 3, layers::Conv2dOptions{1, 1, 1, true}, g));
    net->add(std::make_shared<layers::ReLU>());
    net->add(std::make_shared<layers::Flatten>());
    net->add(std::make_shared<layers::Linear>(4 * 10 * 10, 3, true, g));
    const Tensor x = rand_tensor(Shape{6, 1, 10, 10}, 52, 0.f, 1.f);
    const std::vector<int32_t> classes{0, 1, 2, 0, 1, 2};
    const auto before = predict(*net, x).to_vector<float>();

    const auto grad = randomisation_check(*net, x, classes, gradient_explainer(), 7);
    REQUIRE(grad.size() == 2);
    CHECK(grad[0].layer == "3");
    CHECK(grad[1].layer == "0");
    // Random weights give an unrelated gradient: |rank correlation| well below 1 (measured: -0.08, SSIM 0.17).
    CHECK(std::fabs(grad[1].spearman) < 0.5);
    CHECK(grad[1].ssim < 0.5);
    const auto edges = randomisation_check(*net, x, classes, edge_explainer(), 7);
    for (const auto& s : edges) {
        CHECK(s.spearman == doctest::Approx(1.0));
        CHECK(s.spearman_abs == doctest::Approx(1.0));
        CHECK(s.ssim == doctest::Approx(1.0));
    }
    CHECK(predict(*net, x).to_vector<float>() == before);  // weights restored
}

TEST_CASE("max-sensitivity: zero for a constant gradient, bounded for gradient x input") {
    LinearModel lm(1, 8, 8, 3, 61);
    const Tensor x = rand_tensor(Shape{4, 1, 8, 8}, 62, 0.5f, 1.f);
    const std::vector<int32_t> classes{0, 1, 2, 0};
    SensitivityOptions o;
    o.samples = 5;
    o.radius = 0.05f;
    for (double s : max_sensitivity(*lm.model, x, classes, gradient_explainer(), o)) CHECK(s == doctest::Approx(0.0));
    const Explainer gxi = [](layers::Layer& model, const Tensor& in, const std::vector<int32_t>& cls) {
        Trace t(model, in);
        std::vector<Target> targets;
        for (int32_t c : cls) targets.push_back(Target::of(c));
        return gradient_x_input(t, t.seed(targets));
    };
    // ||W_c (y - x)|| / ||W_c x|| <= r / min(x) = 0.05 / 0.5 for x >= 0.5.
    for (double s : max_sensitivity(*lm.model, x, classes, gxi, o)) CHECK((s > 0.0 && s <= 0.1 + 1e-6));
}

TEST_CASE("conservation: LRP-0 on a bias-free linear model conserves the seed, gradient x input the logit") {
    LinearModel lm(1, 6, 6, 3, 71, /*bias=*/false);
    const Tensor x = rand_tensor(Shape{3, 1, 6, 6}, 72, 0.f, 1.f);
    Trace t(*lm.model, x);
    const Tensor seed = t.seed({Target::of(1)});
    const auto logits = t.logits().to_vector<float>();
    const Tensor r = t.relevance(Composite::preset("lrp0"), seed)[0];
    for (double e : conservation_error(r, {1.0, 1.0, 1.0})) CHECK(e < 1e-5);
    std::vector<double> f{logits[1], logits[4], logits[7]};
    for (double e : conservation_error(gradient_x_input(t, seed), f)) CHECK(e < 1e-5);
    for (double e : conservation_error(gradient_x_input(t, seed), {0.5 * f[0], 0.5 * f[1], 0.5 * f[2]}))
        CHECK(e == doctest::Approx(1.0).epsilon(1e-5));
}
