// autograd/: the engine (fan-in, retained graphs, no-grad, hooks, capture,
// relevance mode) and a finite-difference check of every differentiable function.
#include "autograd/engine.h"
#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "testing.h"

using namespace gb;
using gb::testing::gradcheck;
using gb::testing::rand_tensor;

TEST_CASE("engine: fan-in accumulates, y = x*x + x gives dy/dx = 2x + 1") {
    Tensor x = from_vector(std::vector<float>{1.f, -2.f, 3.f}, Shape{3}).set_requires_grad();
    Tensor y = sum(add(mul(x, x), x));
    autograd::backward(y);
    CHECK(x.grad().to_vector<float>() == std::vector<float>{3.f, -3.f, 7.f});
    // A second, fresh graph accumulates into .grad.
    autograd::backward(sum(x));
    CHECK(x.grad().to_vector<float>() == std::vector<float>{4.f, -2.f, 8.f});
}

TEST_CASE("engine: diamond graph sums both paths before the shared node runs") {
    Tensor x = from_vector(std::vector<float>{2.f}, Shape{1}).set_requires_grad();
    Tensor h = scale(x, 3.f);            // h = 3x
    Tensor y = add(mul(h, h), scale(h, 2.f));  // y = h^2 + 2h -> dy/dx = 3 (2h + 2) = 42 at x = 2
    autograd::backward(sum(y));
    CHECK(x.grad().item() == doctest::Approx(42.f));
}

TEST_CASE("engine: retained graph runs twice, a freed one raises") {
    Tensor x = from_vector(std::vector<float>{1.f, 2.f}, Shape{2}).set_requires_grad();
    Tensor y = sum(mul(x, x));
    autograd::backward(y, Tensor(), /*retain_graph=*/true);
    autograd::backward(y);
    CHECK(x.grad().to_vector<float>() == std::vector<float>{4.f, 8.f});
    CHECK_THROWS_WITH_AS(autograd::backward(y), doctest::Contains("a second time"), Error);
}

TEST_CASE("engine: no-grad guard records nothing") {
    Tensor x = ones(Shape{2}).set_requires_grad();
    {
        autograd::NoGradGuard guard;
        Tensor y = mul(x, x);
        CHECK_FALSE(y.requires_grad());
        CHECK(y.grad_fn() == nullptr);
        CHECK_THROWS_WITH_AS(autograd::backward(sum(y)), doctest::Contains("does not require a gradient"), Error);
    }
    CHECK(autograd::grad_enabled());
    CHECK(mul(x, x).requires_grad());
}

TEST_CASE("engine: tensor hooks see, replace and can be removed") {
    Tensor x = from_vector(std::vector<float>{1.f, 2.f}, Shape{2}).set_requires_grad();
    Tensor h = scale(x, 2.f);
    std::vector<float> seen;
    const int id = h.register_hook([&](const Tensor& g) -> std::optional<Tensor> {
        seen = g.to_vector<float>();
        return scale(g, 10.f);
    });
    Tensor y = sum(mul(h, h));  // dy/dh = 2h = [4, 8]
    autograd::backward(y, Tensor(), true);
    CHECK(seen == std::vector<float>{4.f, 8.f});
    CHECK(x.grad().to_vector<float>() == std::vector<float>{80.f, 160.f});
    CHECK(h.remove_hook(id));
    CHECK_FALSE(h.remove_hook(id));
    x.set_grad(Tensor());
    autograd::backward(y);
    CHECK(x.grad().to_vector<float>() == std::vector<float>{8.f, 16.f});
    // A hook on a leaf sees the gradient before it is accumulated.
    Tensor z = ones(Shape{2}).set_requires_grad();
    int calls = 0;
    z.register_hook([&](const Tensor&) -> std::optional<Tensor> { ++calls; return std::nullopt; });
    autograd::backward(sum(scale(z, 3.f)));
    CHECK(calls == 1);
    CHECK(z.grad().to_vector<float>() == std::vector<float>{3.f, 3.f});
}

TEST_CASE("engine: grad() returns gradients for interior tensors and leaves without touching .grad") {
    Tensor x = from_vector(std::vector<float>{1.f, 2.f, 3.f}, Shape{3}).set_requires_grad();
    Tensor h = mul(x, x);
    Tensor y = sum(scale(h, 0.5f));
    auto g = autograd::grad({y}, {x, h}, {ones(Shape{})});
    CHECK(g[0].to_vector<float>() == std::vector<float>{1.f, 2.f, 3.f});
    CHECK(g[1].to_vector<float>() == std::vector<float>{0.5f, 0.5f, 0.5f});
    CHECK_FALSE(x.grad().defined());
    CHECK_THROWS_WITH_AS(autograd::grad({y}, {ones(Shape{3})}, {ones(Shape{})}),
                         doctest::Contains("does not require a gradient"), Error);
    Tensor r = mul(x, x);
    CHECK_THROWS_WITH_AS(autograd::backward(r), doctest::Contains("single-element root"), Error);
    CHECK_THROWS_WITH_AS(autograd::backward(r, ones(Shape{4})), doctest::Contains("expected shape [3]"), Error);
}

namespace {
// A node whose relevance differs from its gradient, to show the engine's mode switch.
struct HalvingRelevance : autograd::Node {
    std::string name() const override { return "HalvingRelevance"; }
    std::vector<Tensor> backward(const Tensor& g) override { return {g}; }
    std::vector<Tensor> relevance(const Tensor& r) override { return {scale(r, 0.5f)}; }
};
}  // namespace

TEST_CASE("engine: relevance mode calls each node's relevance(), gradient mode its backward()") {
    Tensor x = from_vector(std::vector<float>{2.f, 4.f}, Shape{2}).set_requires_grad();
    Tensor y = autograd::record(std::make_shared<HalvingRelevance>(), {x}, x.detach());
    Tensor z = scale(y, 3.f);  // ScaleBackward has no relevance of its own: it passes its gradient.
    autograd::RunOptions rel;
    rel.mode = autograd::Mode::Relevance;
    rel.retain_graph = true;
    rel.accumulate_into_leaves = false;
    auto r = autograd::run({z}, {ones(Shape{2})}, {x}, rel);
    CHECK(r[0].to_vector<float>() == std::vector<float>{1.5f, 1.5f});
    auto g = autograd::grad({z}, {x}, {ones(Shape{2})});
    CHECK(g[0].to_vector<float>() == std::vector<float>{3.f, 3.f});
}

TEST_CASE("functions: finite-difference gradients") {
    using V = std::vector<Tensor>;
    const Shape s{3, 5};
    gradcheck([](const V& in) { return add(in[0], in[1]); }, {rand_tensor(s, 1), rand_tensor(s, 2)}, "add");
    gradcheck([](const V& in) { return sub(in[0], in[1]); }, {rand_tensor(s, 3), rand_tensor(s, 4)}, "sub");
    gradcheck([](const V& in) { return mul(in[0], in[1]); }, {rand_tensor(s, 5), rand_tensor(s, 6)}, "mul");
    gradcheck([](const V& in) { return scale(in[0], -1.5f); }, {rand_tensor(s, 7)}, "scale");
    // Keep ReLU inputs away from the kink at 0 (|x| >= 0.1 > h).
    Tensor rx = rand_tensor(s, 8, 0.1f, 1.f);
    {
        float* p = rx.data<float>();
        for (int64_t i = 0; i < rx.numel(); i += 2) p[i] = -p[i];
    }
    gradcheck([](const V& in) { return relu(in[0]); }, {rx}, "relu");
    gradcheck([](const V& in) { return sum(in[0]); }, {rand_tensor(s, 9)}, "sum");
    gradcheck([](const V& in) { return mean(in[0]); }, {rand_tensor(s, 10)}, "mean");
    const Shape s3{2, 3, 4};
    for (int64_t axis = 0; axis < 3; ++axis) {
        gradcheck([axis](const V& in) { return sum(in[0], axis); }, {rand_tensor(s3, 11)}, "sum(axis)");
        gradcheck([axis](const V& in) { return mean(in[0], axis, true); }, {rand_tensor(s3, 12)}, "mean(axis)");
    }
    gradcheck([](const V& in) { return mul(reshape(in[0], Shape{4, 6}), reshape(in[1], Shape{4, 6})); },
              {rand_tensor(s3, 13), rand_tensor(s3, 14)}, "reshape");
    gradcheck([](const V& in) { return flatten(in[0]); }, {rand_tensor(s3, 15)}, "flatten");
    gradcheck([](const V& in) { return narrow(in[0], 1, 2); }, {rand_tensor(Shape{4, 3}, 16)}, "narrow");
    gradcheck([](const V& in) { return matmul(in[0], in[1]); },
              {rand_tensor(Shape{3, 7}, 17), rand_tensor(Shape{7, 5}, 18)}, "matmul");
    // op(A) op(B) for every pair of flags: [3, 7] x [7, 5] with the transposed operands stored transposed.
    for (const bool ta : {false, true})
        for (const bool tb : {false, true})
            gradcheck([ta, tb](const V& in) { return matmul(in[0], in[1], ta, tb); },
                      {rand_tensor(ta ? Shape{7, 3} : Shape{3, 7}, 17), rand_tensor(tb ? Shape{5, 7} : Shape{7, 5}, 18)},
                      "matmul(trans_a=" + std::to_string(ta) + ", trans_b=" + std::to_string(tb) + ")");
    gradcheck([](const V& in) { return softmax(in[0]); }, {rand_tensor(Shape{4, 6}, 19, -3.f, 3.f)}, "softmax");
    gradcheck([](const V& in) { return log_softmax(in[0]); }, {rand_tensor(Shape{4, 6}, 20, -3.f, 3.f)},
              "log_softmax");
    Tensor labels = from_vector(std::vector<int32_t>{0, 5, 2, 3}, Shape{4});
    gradcheck([&](const V& in) { return cross_entropy(in[0], labels); }, {rand_tensor(Shape{4, 6}, 21, -3.f, 3.f)},
              "cross_entropy");
}

TEST_CASE("functions: values and bad input") {
    Tensor a = from_vector(std::vector<float>{1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, Shape{2, 3});
    CHECK(sum(a).item() == 21.f);
    CHECK(mean(a).item() == 3.5f);
    CHECK(sum(a, 0).to_vector<float>() == std::vector<float>{5.f, 7.f, 9.f});
    CHECK(sum(a, -1).to_vector<float>() == std::vector<float>{6.f, 15.f});
    CHECK(mean(a, 1, true).shape() == Shape{2, 1});
    // softmax rows sum to 1; cross-entropy of uniform logits is log(classes).
    for (float v : sum(softmax(a), 1).to_vector<float>()) CHECK(v == doctest::Approx(1.f).epsilon(1e-6));
    Tensor labels = from_vector(std::vector<int32_t>{0, 2}, Shape{2});
    CHECK(cross_entropy(zeros(Shape{2, 3}), labels).item() == doctest::Approx(std::log(3.f)).epsilon(1e-6));
    CHECK_THROWS_WITH_AS(add(a, ones(Shape{3, 2})), doctest::Contains("shapes [2, 3] and [3, 2] differ"), Error);
    CHECK_THROWS_WITH_AS(matmul(a, a), doctest::Contains("cannot multiply [2, 3] by [2, 3]"), Error);
    // a^T a = [[17, 22, 27], [22, 29, 36], [27, 36, 45]]; a a^T = [[14, 32], [32, 77]].
    CHECK(matmul(a, a, true, false).to_vector<float>() ==
          std::vector<float>{17.f, 22.f, 27.f, 22.f, 29.f, 36.f, 27.f, 36.f, 45.f});
    CHECK(matmul(a, a, false, true).to_vector<float>() == std::vector<float>{14.f, 32.f, 32.f, 77.f});
    CHECK_THROWS_WITH_AS(matmul(a, a, true, true), doctest::Contains("cannot multiply [2, 3]^T by [2, 3]^T"), Error);
    CHECK_THROWS_WITH_AS(softmax(ones(Shape{2, 3, 4})), doctest::Contains("[rows, cols]"), Error);
    CHECK_THROWS_WITH_AS(cross_entropy(a, from_vector(std::vector<int32_t>{0, 3}, Shape{2})),
                         doctest::Contains("label 3 of sample 1 is outside [0, 3)"), Error);
    CHECK_THROWS_WITH_AS(cross_entropy(a, ones(Shape{2})), doctest::Contains("labels must be int32"), Error);
    CHECK_THROWS_WITH_AS(sum(a, 2), doctest::Contains("axis 2 is out of range"), Error);
    CHECK_THROWS_WITH_AS(from_vector(std::vector<int32_t>{1}, Shape{1}).set_requires_grad(),
                         doctest::Contains("only float32"), Error);
}

namespace {
struct CountingNode : autograd::Node {
    int* calls;
    explicit CountingNode(int* c) : calls(c) {}
    std::string name() const override { return "Counting"; }
    std::vector<Tensor> backward(const Tensor& g) override {
        ++*calls;
        return {g};
    }
};
}  // namespace

TEST_CASE("engine: pruning to captures stops the backward pass at the captured tensor") {
    int calls = 0;
    Tensor x = ones(Shape{3}).set_requires_grad();
    Tensor h = autograd::record(std::make_shared<CountingNode>(&calls), {x}, x.detach());
    Tensor mid = scale(h, 2.f);
    Tensor y = sum(scale(mid, 3.f));
    autograd::RunOptions o;
    o.retain_graph = true;
    o.accumulate_into_leaves = false;
    o.prune_to_captures = true;
    const auto g = autograd::run({y}, {ones(Shape{})}, {mid}, o);
    CHECK(g[0].to_vector<float>() == std::vector<float>{3.f, 3.f, 3.f});
    CHECK(calls == 0);  // the node below the capture never ran
    o.prune_to_captures = false;
    autograd::run({y}, {ones(Shape{})}, {mid}, o);
    CHECK(calls == 1);
}

TEST_CASE("engine: leaf_done once per leaf, when its gradient is complete") {
    // y = sum(a * b + a * a): a reaches the root through three edges, b through one. d/da = b + 2a, d/db = a.
    Tensor a = from_vector(std::vector<float>{1.f, -2.f}, Shape{2});
    Tensor b = from_vector(std::vector<float>{3.f, 0.5f}, Shape{2});
    a.set_requires_grad();
    b.set_requires_grad();
    const Tensor y = sum(add(mul(a, b), mul(a, a)));
    std::vector<std::pair<const TensorImpl*, std::vector<float>>> seen;
    autograd::backward(y, Tensor(), false, [&](TensorImpl& leaf) {
        seen.emplace_back(&leaf, Tensor(leaf.grad).to_vector<float>());  // the total so far must be the total
    });
    REQUIRE(seen.size() == 2);
    for (const auto& [leaf, g] : seen) {
        if (leaf == &a.impl()) CHECK(g == std::vector<float>{5.f, -3.5f});
        else CHECK(g == std::vector<float>{1.f, -2.f});
    }
    CHECK(seen[0].first != seen[1].first);
    // A root that is a leaf is done with its seed.
    Tensor c = from_vector(std::vector<float>{2.f}, Shape{1});
    c.set_requires_grad();
    int calls = 0;
    autograd::backward(c, Tensor(), false, [&](TensorImpl& leaf) {
        CHECK(&leaf == &c.impl());
        ++calls;
    });
    CHECK(calls == 1);
}
