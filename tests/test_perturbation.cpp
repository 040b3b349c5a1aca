// explain/perturbation, slic, lime: occlusion on a linear model, where the score
// drop of a window is exactly the sum of W_c * x over the window (closed form);
// SLIC on synthetic images with known regions; LIME and KernelSHAP recover the
// superpixel sums of W_c * x of a linear model, whose score is exactly linear in
// the coalition. score_perturbations, the loop they all share, on unit images.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include "explain/lime.h"
#include "explain/methods.h"
#include "explain/perturbation.h"
#include "explain/slic.h"
#include "testing.h"
#include "toy_models.h"

using namespace gb;
using namespace gb::testing;
using namespace gb::explain;

TEST_CASE("occlusion on a linear model gives the window's share of W_c * x") {
    LinearModel lm(2, 8, 8, 3, 11);
    const Tensor x = rand_tensor(Shape{3, 2, 8, 8}, 12);
    const std::vector<int32_t> classes{0, 2, 1};
    const Tensor exact = lm.exact(x, classes);
    const auto e = exact.to_vector<float>();
    Trace trace(*lm.model, x);
    std::vector<Target> targets;
    for (int32_t c : classes) targets.push_back(Target::of(c));
    const Tensor seed = trace.seed(targets);

    SUBCASE("1x1 windows: the channel sum of W_c * x (tolerance 1e-5, float32 logits)") {
        OcclusionOptions o;
        o.window = 1;
        o.stride = 1;
        o.batch = 50;  // several batches
        const auto got = occlusion(*lm.model, x, seed, o).to_vector<float>();
        REQUIRE(got.size() == 3u * 64u);
        for (int64_t n = 0; n < 3; ++n)
            for (int64_t i = 0; i < 64; ++i)
                CHECK(got[static_cast<size_t>(n * 64 + i)] ==
                      doctest::Approx(e[static_cast<size_t>(n * 128 + i)] + e[static_cast<size_t>(n * 128 + 64 + i)]).epsilon(1e-4).scale(1));
    }
    SUBCASE("overlapping 4x4 windows, stride 2: the mean over covering windows of their sums") {
        OcclusionOptions o;
        o.window = 4;
        o.stride = 2;
        const auto got = occlusion(*lm.model, x, seed, o).to_vector<float>();
        for (int64_t n = 0; n < 3; ++n)
            for (int64_t y = 0; y < 8; ++y)
                for (int64_t xx = 0; xx < 8; ++xx) {
                    double sum = 0;
                    int count = 0;
                    for (int64_t py = 0; py + 4 <= 8; py += 2)
                        for (int64_t px = 0; px + 4 <= 8; px += 2) {
                            if (y < py || y >= py + 4 || xx < px || xx >= px + 4) continue;
                            ++count;
                            for (int64_t c = 0; c < 2; ++c)
                                for (int64_t a = py; a < py + 4; ++a)
                                    for (int64_t b = px; b < px + 4; ++b) sum += e[static_cast<size_t>(((n * 2 + c) * 8 + a) * 8 + b)];
                        }
                    CHECK(got[static_cast<size_t>((n * 8 + y) * 8 + xx)] == doctest::Approx(sum / count).epsilon(1e-4).scale(1));
                }
    }
    SUBCASE("through explain::attribute, with a baseline option") {
        const Attribution a = attribute(trace, parse_method("occlusion:window=2,stride=2,baseline=0.5"), targets);
        CHECK(a.is_signed);
        CHECK(a.map.shape() == Shape{3, 1, 8, 8});
        const auto shifted = lm.exact(x, classes, 0.5f).to_vector<float>();
        double window = 0;  // the top-left 2x2 window of sample 0, both channels
        for (int64_t c = 0; c < 2; ++c)
            for (int64_t i : {0, 1, 8, 9}) window += shifted[static_cast<size_t>(c * 64 + i)];
        CHECK(a.map.to_vector<float>()[0] == doctest::Approx(window).epsilon(1e-4).scale(1));
        CHECK_THROWS_WITH_AS(attribute(trace, parse_method("occlusion:window=9"), targets), doctest::Contains("window 9"), Error);
    }
}

TEST_CASE("score_perturbations: every perturbation scored from its own row, in batches, with progress") {
    // Perturbation i is the unit image e_i (a zero image whose pixel i takes the value 1), so its
    // logits are column i of W plus the bias (exact up to float32).
    LinearModel lm(1, 4, 4, 3, 21);
    const auto w = lm.linear->weight().to_vector<float>();
    const auto bias = lm.linear->bias().to_vector<float>();
    lm.model->train();
    Perturbations p;
    p.images = zeros(Shape{1, 1, 4, 4});
    p.value = 1.f;
    p.count = 7;
    p.batch = 3;
    p.keep = [](int64_t i, float* keep) {
        std::fill(keep, keep + 16, 1.f);
        keep[i] = 0.f;
    };
    std::vector<int64_t> classes_seen;
    p.score = [&](int64_t, const float* logits, int64_t classes) {
        classes_seen.push_back(classes);
        return static_cast<double>(logits[2]);
    };
    std::vector<std::pair<int64_t, int64_t>> progress;
    p.progress = [&](int64_t done, int64_t total) { progress.emplace_back(done, total); };
    const std::vector<double> scores = score_perturbations(*lm.model, p);
    REQUIRE(scores.size() == 7u);
    for (int64_t i = 0; i < 7; ++i) CHECK(scores[static_cast<size_t>(i)] == doctest::Approx(w[static_cast<size_t>(2 * 16 + i)] + bias[2]).epsilon(1e-6));
    CHECK(classes_seen == std::vector<int64_t>(7, 3));
    CHECK(progress == std::vector<std::pair<int64_t, int64_t>>{{3, 7}, {6, 7}, {7, 7}});  // batches of 3, 3, 1
    CHECK(lm.model->is_training());  // predict restores the mode it found

    p.count = 0;
    CHECK(score_perturbations(*lm.model, p).empty());
    p.count = 1;
    p.batch = 0;
    CHECK_THROWS_WITH_AS(score_perturbations(*lm.model, p), doctest::Contains("batch > 0"), Error);
    p.batch = 1;
    p.images = zeros(Shape{16});
    CHECK_THROWS_WITH_AS(score_perturbations(*lm.model, p), doctest::Contains("[N, C, H, W]"), Error);
}

TEST_CASE("score_perturbations composes x * keep + r * (1 - keep) from images, masks and replacements") {
    // A linear model's logits are linear in the input: each composed input is checked through them,
    // against the same input built here pixel by pixel. Tolerance 1e-5 relative (float32 logits).
    LinearModel lm(2, 3, 4, 3, 23);
    const Tensor x = rand_tensor(Shape{2, 2, 3, 4}, 24), r = rand_tensor(Shape{2, 2, 3, 4}, 25);
    const auto xv = x.to_vector<float>(), rv = r.to_vector<float>();
    const std::vector<float> soft{0.f, 0.25f, 0.5f, 1.f, 0.75f, 0.f, 1.f, 1.f, 0.1f, 0.f, 0.9f, 1.f};
    auto keep_of = [&](int64_t i, int64_t q) { return i == 2 ? soft[static_cast<size_t>(q)] : ((q + i) % 3 == 0 ? 0.f : 1.f); };
    auto image_of = [](int64_t i) { return i % 2 == 0 ? int64_t{1} : int64_t{0}; };
    for (int variant = 0; variant < 3; ++variant) {  // a replacement image, a constant, keep planes on the device (value 0)
        CAPTURE(variant);
        Perturbations p;
        p.images = x;
        p.image = image_of;
        p.count = 5;
        p.batch = 2;
        if (variant == 0) p.replacement = r;
        if (variant == 1) p.value = -0.5f;
        if (variant == 2) {
            std::vector<float> planes;
            for (int64_t i = 0; i < 5; ++i)
                for (int64_t q = 0; q < 12; ++q) planes.push_back(keep_of(i, q));
            p.keep_planes = from_vector(planes, Shape{5, 3, 4});
        } else {
            p.keep = [&](int64_t i, float* keep) {
                for (int64_t q = 0; q < 12; ++q) keep[q] = keep_of(i, q);
            };
        }
        p.score = [](int64_t, const float* logits, int64_t) { return static_cast<double>(logits[1]); };
        const auto got = score_perturbations(*lm.model, p);
        std::vector<float> want_in;
        for (int64_t i = 0; i < 5; ++i)
            for (int64_t c = 0; c < 2; ++c)
                for (int64_t q = 0; q < 12; ++q) {
                    const size_t at = static_cast<size_t>((image_of(i) * 2 + c) * 12 + q);
                    const float k = keep_of(i, q), rep = variant == 0 ? rv[at] : (variant == 1 ? -0.5f : 0.f);
                    want_in.push_back(xv[at] * k + rep * (1.f - k));
                }
        const auto want = predict(*lm.model, from_vector(want_in, Shape{5, 2, 3, 4})).to_vector<float>();
        for (int64_t i = 0; i < 5; ++i) CHECK(got[static_cast<size_t>(i)] == doctest::Approx(want[static_cast<size_t>(i * 3 + 1)]).epsilon(1e-5));
    }
    Perturbations bad;
    bad.images = x;
    bad.count = 1;
    bad.keep = [](int64_t, float* keep) { std::fill(keep, keep + 12, 1.f); };
    bad.score = [](int64_t, const float*, int64_t) { return 0.0; };
    bad.image = [](int64_t) { return int64_t{2}; };
    CHECK_THROWS_WITH_AS(score_perturbations(*lm.model, bad), doctest::Contains("starts from image 2 of 2"), Error);
    bad.image = nullptr;
    bad.replacement = zeros(Shape{1, 2, 3, 4});
    CHECK_THROWS_WITH_AS(score_perturbations(*lm.model, bad), doctest::Contains("must match the images"), Error);
}

TEST_CASE("seeded_score: sum_k seed[k] logits[k] in double, as seeded_scores per row") {
    const std::vector<float> seed{0.f, 1.f, 0.f, 0.5f, 0.f, -2.f}, logits{3.f, -1.f, 0.25f, 8.f, 2.f, 1.f};
    CHECK(seeded_score(seed.data(), logits.data(), 3) == -1.0);
    const auto rows = seeded_scores(from_vector(logits, Shape{2, 3}), seed, 2);
    CHECK(rows == std::vector<double>{-1.0, 0.5 * 8.0 - 2.0});
}

TEST_CASE("random maps are seeded, uniform and the same on every call") {
    const Tensor a = random_map(2, 5, 5, 3), b = random_map(2, 5, 5, 3), c = random_map(2, 5, 5, 4);
    CHECK(a.to_vector<float>() == b.to_vector<float>());
    CHECK(a.to_vector<float>() != c.to_vector<float>());
    for (float v : a.to_vector<float>()) CHECK((v >= 0.f && v < 1.f));
}

namespace {

// Every superpixel inside one region of `truth`, and every label one 4-connected piece.
void check_segmentation(const Segmentation& s, const std::vector<int>& truth) {
    const int64_t H = s.height, W = s.width;
    std::vector<std::set<int>> regions(static_cast<size_t>(s.count));
    for (int64_t p = 0; p < H * W; ++p) {
        REQUIRE(s.labels[static_cast<size_t>(p)] >= 0);
        REQUIRE(s.labels[static_cast<size_t>(p)] < s.count);
        regions[static_cast<size_t>(s.labels[static_cast<size_t>(p)])].insert(truth[static_cast<size_t>(p)]);
    }
    for (const auto& r : regions) CHECK(r.size() == 1);
    for (int32_t l = 0; l < s.count; ++l) {
        std::vector<uint8_t> seen(static_cast<size_t>(H * W), 0);
        const int64_t start = std::find(s.labels.begin(), s.labels.end(), l) - s.labels.begin();
        std::vector<int64_t> stack{start};
        seen[static_cast<size_t>(start)] = 1;
        int64_t reached = 0;
        while (!stack.empty()) {
            const int64_t p = stack.back();
            stack.pop_back();
            ++reached;
            const int64_t y = p / W, x = p % W;
            for (auto [dy, dx] : {std::pair{-1, 0}, {1, 0}, {0, -1}, {0, 1}}) {
                const int64_t q = (y + dy) * W + x + dx;
                if (y + dy < 0 || y + dy >= H || x + dx < 0 || x + dx >= W || seen[static_cast<size_t>(q)] ||
                    s.labels[static_cast<size_t>(q)] != l)
                    continue;
                seen[static_cast<size_t>(q)] = 1;
                stack.push_back(q);
            }
        }
        CHECK(reached == std::count(s.labels.begin(), s.labels.end(), l));
    }
}

}  // namespace

TEST_CASE("SLIC follows known regions and gives connected superpixels") {
    SUBCASE("four quadrants of different grey") {
        std::vector<float> img(24 * 24);
        std::vector<int> truth(24 * 24);
        for (int y = 0; y < 24; ++y)
            for (int x = 0; x < 24; ++x) {
                truth[static_cast<size_t>(y * 24 + x)] = (y / 12) * 2 + x / 12;
                img[static_cast<size_t>(y * 24 + x)] = 0.1f + 0.3f * static_cast<float>(truth[static_cast<size_t>(y * 24 + x)]);
            }
        SlicOptions o;
        o.segments = 16;
        const Segmentation s = slic(from_vector(img, Shape{1, 24, 24}), o);
        CHECK(s.count >= 8);
        CHECK(s.count <= 32);
        check_segmentation(s, truth);
    }
    SUBCASE("a bright disc on a dark background, not aligned with the grid; RGB") {
        std::vector<float> img(3 * 30 * 30);
        std::vector<int> truth(30 * 30);
        for (int y = 0; y < 30; ++y)
            for (int x = 0; x < 30; ++x) {
                const bool in = (y - 13.5) * (y - 13.5) + (x - 16.2) * (x - 16.2) < 64;
                truth[static_cast<size_t>(y * 30 + x)] = in;
                for (int c = 0; c < 3; ++c) img[static_cast<size_t>((c * 30 + y) * 30 + x)] = in ? 0.9f - 0.1f * c : 0.1f;
            }
        SlicOptions o;
        o.segments = 9;
        const Segmentation s = slic(from_vector(img, Shape{3, 30, 30}), o);
        check_segmentation(s, truth);
        CHECK(s.count >= 4);
    }
    CHECK_THROWS_WITH_AS(slic(zeros(Shape{4, 4})), doctest::Contains("[C, H, W]"), Error);
}

TEST_CASE("LIME and KernelSHAP recover a linear model's superpixel sums of W_c * x") {
    LinearModel lm(1, 8, 8, 3, 81);
    const Tensor x = rand_tensor(Shape{2, 1, 8, 8}, 82);
    Trace trace(*lm.model, x);
    const std::vector<int32_t> classes{2, 0};
    const Tensor seed = trace.seed({Target::of(2), Target::of(0)});
    const auto e = lm.exact(x, classes).to_vector<float>();
    // Known segments: the 16 2x2 blocks.
    Segmentation blocks;
    blocks.height = blocks.width = 8;
    blocks.count = 16;
    for (int y = 0; y < 8; ++y)
        for (int xx = 0; xx < 8; ++xx) blocks.labels.push_back((y / 2) * 4 + xx / 2);
    std::vector<std::vector<double>> want(2, std::vector<double>(16, 0.0));
    double scale = 0;
    for (int n = 0; n < 2; ++n)
        for (int p = 0; p < 64; ++p) want[size_t(n)][size_t(blocks.labels[size_t(p)])] += e[size_t(n * 64 + p)];
    for (const auto& w : want)
        for (double v : w) scale = std::max(scale, std::fabs(v));
    SurrogateOptions o;
    o.samples = 200;
    o.batch = 128;
    o.seed = 3;
    // Tolerance: 1e-4 of the largest coefficient (float32 logits; the fit itself is exact).
    SUBCASE("LIME with a negligible ridge") {
        o.ridge = 1e-6f;
        const SurrogateResult r = lime(*lm.model, x, seed, o, {blocks, blocks});
        for (int n = 0; n < 2; ++n)
            for (int j = 0; j < 16; ++j) CHECK(std::fabs(r.coefficients[size_t(n)][size_t(j)] - want[size_t(n)][size_t(j)]) < 1e-4 * scale);
        CHECK(r.map.shape() == Shape{2, 1, 8, 8});
        CHECK(r.map.to_vector<float>()[9] == doctest::Approx(want[0][0]).epsilon(1e-4));  // pixel (1, 1) is in block 0
        // Every pixel holds its block's coefficient, exactly (as float).
        const auto map = r.map.to_vector<float>();
        for (int n = 0; n < 2; ++n)
            for (int q = 0; q < 64; ++q)
                CHECK(map[size_t(n * 64 + q)] == static_cast<float>(r.coefficients[size_t(n)][size_t(blocks.labels[size_t(q)])]));
        // The same seed gives the same explanation.
        CHECK(lime(*lm.model, x, seed, o, {blocks, blocks}).coefficients == r.coefficients);
        Segmentation wrong = blocks;
        wrong.labels[5] = 16;  // a label beyond the count
        CHECK_THROWS_WITH_AS(lime(*lm.model, x, seed, o, {blocks, wrong}), doctest::Contains("segmentation 1 is not a labelling"), Error);
    }
    SUBCASE("LIME's default ridge (alpha = 1) shrinks towards zero") {
        const SurrogateResult r = lime(*lm.model, x, seed, o, {blocks, blocks});
        double got = 0, ref = 0;
        for (int j = 0; j < 16; ++j) got += std::fabs(r.coefficients[0][size_t(j)]), ref += std::fabs(want[0][size_t(j)]);
        CHECK(got < ref);
        CHECK(got > 0.5 * ref);
    }
    SUBCASE("KernelSHAP: exact coefficients and efficiency, on SLIC superpixels too") {
        const SurrogateResult r = kernel_shap(*lm.model, x, seed, o, {blocks, blocks});
        for (int n = 0; n < 2; ++n)
            for (int j = 0; j < 16; ++j) CHECK(std::fabs(r.coefficients[size_t(n)][size_t(j)] - want[size_t(n)][size_t(j)]) < 1e-4 * scale);
        o.samples = 60;
        const SurrogateResult s = kernel_shap(*lm.model, x, seed, o);
        const auto logits = trace.logits().to_vector<float>();
        const auto at0 = predict(*lm.model, zeros(x.shape())).to_vector<float>();
        for (int n = 0; n < 2; ++n) {
            const size_t k = size_t(n * 3 + classes[size_t(n)]);
            double sum = 0;
            for (double c : s.coefficients[size_t(n)]) sum += c;
            CHECK(sum == doctest::Approx(logits[k] - at0[k]).epsilon(1e-4));
            CHECK(s.intercept[size_t(n)] == doctest::Approx(at0[k]).epsilon(1e-4));
        }
    }
}

TEST_CASE("weighted ridge regression against a closed form") {
    // y = 2 a - b exactly on four rows: least squares recovers (2, -1); weights do not matter.
    const std::vector<double> A{1, 0, 0, 1, 1, 1, 2, 1}, y{2, -1, 1, 3}, w{1, 2, 3, 4};
    const auto b = weighted_ridge(A, y, w, 2, 0.0);
    CHECK(b[0] == doctest::Approx(2.0).epsilon(1e-12));
    CHECK(b[1] == doctest::Approx(-1.0).epsilon(1e-12));
    // One column, ridge 1: b = sum w a y / (sum w a^2 + 1) = (1*1*2 + 3*1*1 + 4*2*3) / (1 + 3 + 16 + 1).
    const auto r = weighted_ridge({1, 0, 1, 2}, y, w, 1, 1.0);
    CHECK(r[0] == doctest::Approx(29.0 / 21.0).epsilon(1e-12));
    CHECK_THROWS_WITH_AS(weighted_ridge({0, 0}, {1, 1}, {1, 1}, 1, 0.0), doctest::Contains("singular"), Error);
}
