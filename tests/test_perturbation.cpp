// explain/perturbation: occlusion on a linear model, where the score drop of a
// window is exactly the sum of W_c * x over the window (closed form).
#include <doctest/doctest.h>

#include "explain/methods.h"
#include "explain/perturbation.h"
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

TEST_CASE("random maps are seeded, uniform and the same on every call") {
    const Tensor a = random_map(2, 5, 5, 3), b = random_map(2, 5, 5, 3), c = random_map(2, 5, 5, 4);
    CHECK(a.to_vector<float>() == b.to_vector<float>());
    CHECK(a.to_vector<float>() != c.to_vector<float>());
    for (float v : a.to_vector<float>()) CHECK((v >= 0.f && v < 1.f));
}
