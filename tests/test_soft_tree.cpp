// The soft decision tree (models/soft_tree.h) and the CART baseline (models/cart.h): gradients of the
// distillation loss against central differences, path probabilities against a direct product of
// sigmoids, the balance penalty in closed form, CART against brute force and on separable data, and
// exact save/load round trips.
#include <doctest/doctest.h>

#include <cmath>
#include <numeric>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/factory.h"
#include "models/cart.h"
#include "models/soft_tree.h"
#include "temp_dir.h"
#include "testing.h"

using namespace gb;
using gb::testing::gradcheck;
using gb::testing::rand_tensor;

namespace {

models::SoftTreeConfig small_config(int64_t depth, float beta = 1.5f) {
    models::SoftTreeConfig c;
    c.depth = depth;
    c.channels = 2;
    c.height = 2;
    c.width = 2;
    c.classes = 3;
    c.beta = beta;
    return c;
}

// Rows of a random distribution over `classes` (soft targets).
Tensor random_targets(int64_t n, int64_t classes, uint64_t seed) {
    autograd::NoGradGuard no_grad;
    return softmax(rand_tensor(Shape{n, classes}, seed, -2.f, 2.f));
}

double sigmoid(double t) { return 1.0 / (1.0 + std::exp(-t)); }

// p_i(x_n) = sigmoid(beta (w_i . x_n + b_i)) in double from the tree's parameters.
std::vector<std::vector<double>> right_probabilities(models::SoftTree& tree, const Tensor& x) {
    const auto w = tree.inner().weight().to_vector<float>(), b = tree.inner().bias().to_vector<float>();
    const auto xv = x.to_vector<float>();
    const int64_t N = x.dim(0), P = tree.config().inputs(), I = tree.config().inner_nodes();
    std::vector<std::vector<double>> p(static_cast<size_t>(N), std::vector<double>(static_cast<size_t>(I)));
    for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < I; ++i) {
            double z = b[static_cast<size_t>(i)];
            for (int64_t k = 0; k < P; ++k) z += double(w[static_cast<size_t>(i * P + k)]) * xv[static_cast<size_t>(n * P + k)];
            p[static_cast<size_t>(n)][static_cast<size_t>(i)] = sigmoid(tree.config().beta * z);
        }
    return p;
}

}  // namespace

TEST_CASE("soft tree: the loss's gradient matches central differences") {
    // Depth 3 (7 filters over 8 inputs, 8 leaves of 3 classes), 6 samples, soft targets. Reference: central
    // differences of the loss in double (tests/testing.h: step 1e-3, |num - ana| <= 2e-3 + 1e-2 |ana|).
    Generator gen(3);
    models::SoftTree tree(small_config(3), gen);
    {  // leaves that differ, so the routing matters
        autograd::NoGradGuard no_grad;
        tree.leaf_logits().copy_from(rand_tensor(tree.leaf_logits().shape(), 4, -1.f, 1.f));
    }
    const Tensor x = rand_tensor(Shape{6, 2, 2, 2}, 5);
    const Tensor t = random_targets(6, 3, 6);
    const std::vector<Tensor> params{tree.inner().weight(), tree.inner().bias(), tree.leaf_logits()};
    REQUIRE(tree.named_parameters().size() == 3);
    for (const float lambda : {0.f, 0.5f}) {
        gradcheck([&](const std::vector<Tensor>&) { return tree.loss(x, t, lambda).total; }, params,
                  "soft tree loss, lambda " + std::to_string(lambda));
    }
    // The penalty alone (lambda 1): its gradient reaches only the filters.
    gradcheck([&](const std::vector<Tensor>&) { return tree.loss(x, t, 1.f).penalty; }, {params[0], params[1]},
              "soft tree penalty");
}

TEST_CASE("soft tree: path probabilities are products of sigmoids and sum to 1 over the leaves") {
    Generator gen(7);
    models::SoftTree tree(small_config(4, 2.f), gen);
    const Tensor x = rand_tensor(Shape{5, 8}, 8, -2.f, 2.f);
    const auto p = right_probabilities(tree, x);
    Tensor lp;
    {
        autograd::NoGradGuard no_grad;
        lp = tree.leaf_log_probabilities(x);
    }
    REQUIRE(lp.shape() == Shape({5, 16}));
    const auto v = lp.to_vector<float>();
    for (int64_t n = 0; n < 5; ++n) {
        double total = 0;
        for (int64_t l = 0; l < 16; ++l) {
            double ref = 1;
            for (const auto& [node, dir] : models::SoftTree::path_to_leaf(4, l)) {
                const double q = p[static_cast<size_t>(n)][static_cast<size_t>(node)];
                ref *= dir == 1 ? q : 1 - q;
            }
            const double got = std::exp(double(v[static_cast<size_t>(n * 16 + l)]));
            // float32 log-probabilities: relative 1e-5 of the path probability.
            CHECK(got == doctest::Approx(ref).epsilon(1e-5));
            total += got;
        }
        CHECK(total == doctest::Approx(1.0).epsilon(1e-5));
    }
    // The most probable leaf and its path, against the host reference.
    const models::SoftTreePrediction pr = tree.predict(x);
    for (int64_t n = 0; n < 5; ++n) {
        int64_t best = 0;
        for (int64_t l = 1; l < 16; ++l)
            if (v[static_cast<size_t>(n * 16 + l)] > v[static_cast<size_t>(n * 16 + best)]) best = l;
        CHECK(pr.leaf[static_cast<size_t>(n)] == best);
        const auto right = pr.right.to_vector<float>();
        for (int64_t i = 0; i < 15; ++i)
            CHECK(right[static_cast<size_t>(n * 15 + i)] ==
                  doctest::Approx(p[static_cast<size_t>(n)][static_cast<size_t>(i)]).epsilon(1e-5));
    }
    CHECK(models::SoftTree::path_to_leaf(2, 2) == std::vector<std::pair<int64_t, int>>{{0, 1}, {2, 0}});
    CHECK(models::SoftTree::node_depth(0) == 0);
    CHECK(models::SoftTree::node_depth(6) == 2);
    CHECK(models::SoftTree::node_depth(7) == 3);
}

TEST_CASE("soft tree: the balance penalty in closed form") {
    // Depth 2, lambda 0.25. With every filter zero, p = sigmoid(0) = 0.5 everywhere, every alpha is 1/2 and
    // C = lambda (1 + 2 * 1/2) log 2 exactly.
    Generator gen(1);
    models::SoftTree tree(small_config(2, 1.f), gen);
    const Tensor x = rand_tensor(Shape{4, 8}, 9);
    const Tensor t = random_targets(4, 3, 10);
    {
        autograd::NoGradGuard no_grad;
        Tensor w = tree.inner().weight(), b = tree.inner().bias();
        fill(w, 0.f);
        fill(b, 0.f);
    }
    CHECK(tree.loss(x, t, 0.25f).penalty.item() == doctest::Approx(0.25 * 2 * std::log(2.0)).epsilon(1e-6));
    // Random filters: C = lambda sum_i 2^-depth(i) -(0.5 log a_i + 0.5 log(1 - a_i)),
    // a_i = sum_n P_i(x_n) p_i(x_n) / sum_n P_i(x_n), computed here in double from the sigmoids.
    {
        autograd::NoGradGuard no_grad;
        tree.inner().weight().copy_from(rand_tensor(tree.inner().weight().shape(), 11, -0.8f, 0.8f));
        tree.inner().bias().copy_from(rand_tensor(tree.inner().bias().shape(), 12, -0.5f, 0.5f));
    }
    const auto p = right_probabilities(tree, x);
    double ref = 0;
    for (int64_t i = 0; i < 3; ++i) {
        double num = 0, den = 0;
        for (size_t n = 0; n < 4; ++n) {
            // The path probability of node i: 1 at the root; p_0 or 1 - p_0 at its right or left child.
            const double reach = i == 0 ? 1.0 : (i == 2 ? p[n][0] : 1 - p[n][0]);
            num += reach * p[n][static_cast<size_t>(i)];
            den += reach;
        }
        const double a = num / den;
        ref += std::ldexp(1.0, -static_cast<int>(models::SoftTree::node_depth(i))) * -(0.5 * std::log(a) + 0.5 * std::log(1 - a));
    }
    CHECK(tree.loss(x, t, 0.25f).penalty.item() == doctest::Approx(0.25 * ref).epsilon(1e-5));
    // The data term: the mean over samples of sum_l P^l (-sum_k T_k log Q^l_k), Q uniform at the start: log 3.
    CHECK(tree.loss(x, t, 0.25f).data.item() == doctest::Approx(std::log(3.0)).epsilon(1e-6));
}

TEST_CASE("soft tree: bad input and configuration") {
    models::SoftTreeConfig c = small_config(0);
    CHECK_THROWS_WITH_AS(models::SoftTree{c}, doctest::Contains("depth 0 is outside [1, 12]"), Error);
    c = small_config(2, -1.f);
    CHECK_THROWS_WITH_AS(models::SoftTree{c}, doctest::Contains("beta = -1"), Error);
    models::SoftTree tree(small_config(2));
    CHECK_THROWS_WITH_AS(tree.leaf_log_probabilities(ones(Shape{3, 7})), doctest::Contains("got float32 [3, 7]"),
                         Error);
    CHECK_THROWS_WITH_AS(tree.loss(ones(Shape{3, 8}), ones(Shape{3, 4}), 0.1f),
                         doctest::Contains("targets [3, 4] for 3 inputs"), Error);
    CHECK_THROWS_WITH_AS(tree.loss(ones(Shape{3, 8}), ones(Shape{3, 3}), -1.f), doctest::Contains("lambda = -1"),
                         Error);
    CHECK_THROWS_WITH_AS(models::SoftTree::path_to_leaf(2, 4), doctest::Contains("no leaf 4"), Error);
}

TEST_CASE("soft tree: save and load round trip exactly") {
    gb::testing::TempDir dir("soft-tree");
    Generator gen(21);
    models::SoftTree tree(small_config(3, 0.75f), gen);
    {
        autograd::NoGradGuard no_grad;
        tree.leaf_logits().copy_from(rand_tensor(tree.leaf_logits().shape(), 22, -3.f, 3.f));
    }
    const std::string path = dir.path() + "/tree.safetensors";
    models::save_soft_tree(path, tree, {{"normalize.mean", "0.5"}, {"normalize.std", "0.25"}});
    const io::SafeTensors file = io::load_safetensors(path);
    CHECK(models::is_soft_tree(file.metadata));
    CHECK(file.metadata.at("soft_tree.beta") == "0.75");
    auto back = models::load_soft_tree(file);
    CHECK(back->config().depth == 3);
    CHECK(back->config().beta == 0.75f);
    const auto a = tree.state(), b = back->state();
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].first == b[i].first);
        CHECK(a[i].second.to_vector<float>() == b[i].second.to_vector<float>());
    }
    const Tensor x = rand_tensor(Shape{4, 8}, 23);
    CHECK(tree.predict(x).leaf == back->predict(x).leaf);
    CHECK(tree.predict(x).mixture.to_vector<float>() == back->predict(x).mixture.to_vector<float>());
    // Not a tree: a file without the format, and a tree with a missing tensor.
    io::save_safetensors(dir.path() + "/plain.safetensors", {{"x", ones(Shape{2})}});
    CHECK_THROWS_WITH_AS(models::load_soft_tree(dir.path() + "/plain.safetensors"),
                         doctest::Contains("not a soft decision tree"), Error);
    auto meta = file.metadata;
    io::save_safetensors(dir.path() + "/partial.safetensors", {{"leaf_logits", tree.leaf_logits()}}, meta);
    CHECK_THROWS_WITH_AS(models::load_soft_tree(dir.path() + "/partial.safetensors"),
                         doctest::Contains("missing 'inner.weight'"), Error);
}

TEST_CASE("CART: the root split is the brute-force best Gini split") {
    // 40 samples, 3 features with few distinct values (ties), 3 classes. Reference: every (feature, threshold
    // between distinct values) scored by the weighted Gini impurity of the two sides, the lowest kept (the first
    // of equal ones in feature, then threshold order).
    const int64_t n = 40, F = 3, K = 3;
    Generator g(31);
    std::vector<float> x(static_cast<size_t>(n * F));
    std::vector<int32_t> y(static_cast<size_t>(n));
    for (auto& v : x) v = static_cast<float>(g.below(6)) * 0.5f;
    for (int64_t i = 0; i < n; ++i)
        y[static_cast<size_t>(i)] = static_cast<int32_t>((x[static_cast<size_t>(i * F + 1)] > 1.2f) + (g.below(4) == 0));
    double best = 1e30;
    int64_t best_f = -1;
    float best_t = 0;
    for (int64_t f = 0; f < F; ++f)
        for (int step = 0; step < 5; ++step) {
            const float thr = 0.25f + 0.5f * static_cast<float>(step);
            std::vector<double> l(K, 0), r(K, 0);
            for (int64_t i = 0; i < n; ++i)
                (x[static_cast<size_t>(i * F + f)] <= thr ? l : r)[static_cast<size_t>(y[static_cast<size_t>(i)])] += 1;
            const double nl = std::accumulate(l.begin(), l.end(), 0.0), nr = std::accumulate(r.begin(), r.end(), 0.0);
            if (nl == 0 || nr == 0) continue;
            auto gini = [](const std::vector<double>& c, double m) {
                double s = 1;
                for (double v : c) s -= (v / m) * (v / m);
                return s;
            };
            const double imp = nl * gini(l, nl) + nr * gini(r, nr);
            if (imp < best - 1e-9) {
                best = imp;
                best_f = f;
                best_t = thr;
            }
        }
    models::CartOptions o;
    o.max_depth = 1;
    const models::CartTree t = models::fit_cart(x.data(), n, F, y.data(), K, o);
    REQUIRE(t.nodes() == 3);
    CHECK(t.feature[0] == best_f);
    CHECK(t.threshold[0] == best_t);
    CHECK(t.leaves() == 2);
}

TEST_CASE("CART: separable data is fitted exactly and predicted at 100%") {
    // class 0: x0 <= 0; class 1: x0 > 0 and x1 <= 0.5; class 2: x0 > 0 and x1 > 0.5 (a third feature is noise).
    auto make = [](int64_t n, uint64_t seed, std::vector<float>& x, std::vector<int32_t>& y) {
        Generator g(seed);
        x.resize(static_cast<size_t>(n * 3));
        y.resize(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
            float a = g.uniform(-1.f, 1.f), b = g.uniform(-1.f, 1.f);
            if (std::fabs(a) < 0.05f) a += 0.1f;  // a margin around the boundaries
            if (std::fabs(b - 0.5f) < 0.05f) b += 0.1f;
            x[static_cast<size_t>(i * 3)] = a;
            x[static_cast<size_t>(i * 3 + 1)] = b;
            x[static_cast<size_t>(i * 3 + 2)] = g.uniform();
            y[static_cast<size_t>(i)] = a <= 0 ? 0 : (b <= 0.5f ? 1 : 2);
        }
    };
    std::vector<float> x, xt;
    std::vector<int32_t> y, yt;
    make(300, 41, x, y);
    make(200, 42, xt, yt);
    models::CartOptions o;
    o.max_depth = 4;
    const models::CartTree t = models::fit_cart(x.data(), 300, 3, y.data(), 3, o);
    CHECK(t.predict(x.data(), 300) == y);
    CHECK(t.predict(xt.data(), 200) == yt);
    CHECK(t.max_depth() == 2);  // pure after two splits: nothing more is split
    CHECK(t.leaves() == 3);

    // Save and load: the same arrays.
    gb::testing::TempDir dir("soft-tree");
    models::save_cart(dir.path() + "/cart.safetensors", t, {{"cart.input", "1,1,3"}});
    const models::CartTree back = models::load_cart(io::load_safetensors(dir.path() + "/cart.safetensors"));
    CHECK(back.feature == t.feature);
    CHECK(back.left == t.left);
    CHECK(back.right == t.right);
    CHECK(back.threshold == t.threshold);
    CHECK(back.distribution == t.distribution);
    CHECK(back.features == 3);

    const std::vector<int32_t> bad_labels(300, 3);
    CHECK_THROWS_WITH_AS(models::fit_cart(x.data(), 300, 3, bad_labels.data(), 3, o),
                         doctest::Contains("label 3 of sample 0 is outside [0, 3)"), Error);
}
