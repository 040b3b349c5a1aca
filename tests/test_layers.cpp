// layers/: finite-difference gradients of every layer (input and parameters),
// names, modes, hooks, and errors on bad input.
#include <numeric>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "layers/layer_node.h"
#include "layers/layers.h"
#include "testing.h"

using namespace gb;
using namespace gb::layers;
using gb::testing::gradcheck;
using gb::testing::rand_tensor;
using V = std::vector<Tensor>;

namespace {
// Checks the layer's input gradient and every parameter gradient.
void check_layer(Layer& layer, const Tensor& x, const std::string& what, float atol = 2e-3f) {
    V inputs{x};
    for (auto& p : layer.parameters()) inputs.push_back(p);
    gradcheck([&](const V& in) { return layer(in[0]); }, inputs, what, 1e-3f, atol);
}

// Distinct values spaced 0.01 apart (> 2h) so no max-pool window has a near tie.
Tensor distinct(const Shape& s, uint64_t seed) {
    std::vector<float> v(static_cast<size_t>(s.numel()));
    std::iota(v.begin(), v.end(), 0.f);
    Generator g(seed);
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[g.below(i)]);
    for (auto& x : v) x *= 0.01f;
    return from_vector(v, s);
}
}  // namespace

TEST_CASE("Conv2d: gradients for stride, padding and dilation") {
    Generator g(1);
    Conv2d plain(3, 4, 3, {.padding = 1}, g);
    check_layer(plain, rand_tensor(Shape{2, 3, 5, 6}, 2), "conv 3x3 p1");
    Conv2d strided(2, 3, 3, {.stride = 2, .padding = 1, .dilation = 2}, g);
    check_layer(strided, rand_tensor(Shape{2, 2, 7, 8}, 3), "conv s2 p1 d2");
    Conv2d nobias(2, 2, 1, {.bias = false}, g);
    check_layer(nobias, rand_tensor(Shape{1, 2, 3, 3}, 4), "conv 1x1 no bias");
    CHECK(nobias.parameters().size() == 1);
}

TEST_CASE("Linear, ReLU, Flatten: gradients") {
    Generator g(5);
    Linear lin(7, 4, true, g);
    check_layer(lin, rand_tensor(Shape{3, 7}, 6), "linear");
    ReLU relu;
    Tensor x = rand_tensor(Shape{2, 3, 4}, 7, 0.1f, 1.f);
    for (int64_t i = 0; i < x.numel(); i += 3) x.data<float>()[i] *= -1.f;
    check_layer(relu, x, "relu");
    Flatten flat;
    check_layer(flat, rand_tensor(Shape{2, 3, 2, 2}, 8), "flatten");
    CHECK(flat(rand_tensor(Shape{2, 3, 2, 2}, 8)).shape() == Shape{2, 12});
}

TEST_CASE("pooling: gradients") {
    MaxPool2d mp(2);
    check_layer(mp, distinct(Shape{2, 3, 6, 5}, 9), "maxpool 2");
    MaxPool2d mp_overlap(3, 2, 1);
    check_layer(mp_overlap, distinct(Shape{1, 2, 7, 7}, 10), "maxpool 3 s2 p1");
    AvgPool2d ap(3, 2, 1);
    check_layer(ap, rand_tensor(Shape{2, 2, 7, 6}, 11), "avgpool count_include_pad");
    AvgPool2d ap_ex(3, 2, 1, false);
    check_layer(ap_ex, rand_tensor(Shape{2, 2, 7, 6}, 12), "avgpool exclude pad");
    AdaptiveAvgPool2d aap(3, 2);
    check_layer(aap, rand_tensor(Shape{2, 2, 5, 7}, 13), "adaptive avgpool 5x7 -> 3x2");
    CHECK(aap(rand_tensor(Shape{1, 1, 5, 7}, 1)).shape() == Shape{1, 1, 3, 2});
}

TEST_CASE("BatchNorm2d: gradients in training and eval, running statistics") {
    BatchNorm2d bn(3);
    Generator g(14);
    Tensor w = bn.weight(), b = bn.bias();
    layers::init::uniform(w, 0.5f, 1.5f, g);
    layers::init::uniform(b, -0.5f, 0.5f, g);
    Tensor x = rand_tensor(Shape{4, 3, 3, 2}, 15, -2.f, 2.f);
    check_layer(bn, x, "batchnorm train", 5e-3f);

    // Running stats: one training step from (0, 1) with momentum 0.1 gives
    // 0.1 * batch mean and 0.9 + 0.1 * unbiased batch variance (closed form on the host).
    BatchNorm2d fresh(3);
    fresh(x);
    const auto xv = x.to_vector<float>();
    const auto rm = fresh.running_mean().to_vector<float>(), rv = fresh.running_var().to_vector<float>();
    for (int c = 0; c < 3; ++c) {
        double s = 0, s2 = 0;
        int n = 0;
        for (int i = 0; i < 4; ++i)
            for (int k = 0; k < 6; ++k) {
                const double v = xv[static_cast<size_t>((i * 3 + c) * 6 + k)];
                s += v;
                s2 += v * v;
                ++n;
            }
        const double m = s / n, var_unbiased = (s2 - n * m * m) / (n - 1);
        CHECK(rm[static_cast<size_t>(c)] == doctest::Approx(0.1 * m).epsilon(1e-5));
        CHECK(rv[static_cast<size_t>(c)] == doctest::Approx(0.9 + 0.1 * var_unbiased).epsilon(1e-5));
    }
    bn.eval();
    check_layer(bn, x, "batchnorm eval");
    Tensor y = bn(x);  // eval: (x - running_mean) / sqrt(running_var + eps) * w + b
    const auto yv = y.to_vector<float>(), wv = w.to_vector<float>(), bv = b.to_vector<float>();
    const auto m2 = bn.running_mean().to_vector<float>(), v2 = bn.running_var().to_vector<float>();
    for (size_t i = 0; i < yv.size(); ++i) {
        const size_t c = (i / 6) % 3;
        CHECK(yv[i] == doctest::Approx((xv[i] - m2[c]) / std::sqrt(v2[c] + 1e-5f) * wv[c] + bv[c]).epsilon(1e-5));
    }
    BatchNorm2d single(2);
    CHECK_THROWS_WITH_AS(single(ones(Shape{1, 2, 1, 1})), doctest::Contains("more than one value per channel"), Error);
}

TEST_CASE("Dropout: scaled mask in training, identity in eval") {
    Generator g(16);
    Dropout drop(0.25f, &g);
    Tensor x = rand_tensor(Shape{64, 50}, 17, 0.5f, 1.f).set_requires_grad();
    Tensor y = drop(x);
    Tensor w = rand_tensor(y.shape(), 18);
    const Tensor dx = autograd::grad({y}, {x}, {w})[0];
    const auto xv = x.to_vector<float>(), yv = y.to_vector<float>(), wv = w.to_vector<float>(),
               gv = dx.to_vector<float>();
    size_t kept = 0;
    for (size_t i = 0; i < xv.size(); ++i) {
        const float m = yv[i] / xv[i];  // the mask value: 0 or 1/(1-p)
        const bool keep = std::fabs(m - 1.f / 0.75f) < 1e-5f;
        REQUIRE((keep || m == 0.f));
        kept += keep;
        CHECK(gv[i] == doctest::Approx(wv[i] * (keep ? 1.f / 0.75f : 0.f)));
    }
    // 3200 draws with keep probability 0.75: standard deviation 24.5; bound = 5 sigma.
    CHECK(std::fabs(static_cast<double>(kept) - 2400.0) < 125.0);
    drop.eval();
    CHECK(drop(x).to_vector<float>() == xv);
    CHECK_THROWS_WITH_AS(Dropout(1.f), doctest::Contains("p must be in [0, 1)"), Error);
}

namespace {
std::shared_ptr<Sequential> tiny_net() {
    Generator g(19);
    auto features = std::make_shared<Sequential>();
    features->add(std::make_shared<Conv2d>(1, 2, 3, Conv2dOptions{.padding = 1}, g));
    features->add(std::make_shared<ReLU>());
    features->add(std::make_shared<MaxPool2d>(2));
    auto classifier = std::make_shared<Sequential>();
    classifier->add(std::make_shared<Flatten>());
    classifier->add(std::make_shared<Linear>(2 * 2 * 2, 3, true, g));
    classifier->add(std::make_shared<Dropout>(0.5f));
    auto net = std::make_shared<Sequential>();
    net->add("features", features);
    net->add("classifier", classifier);
    return net;
}
}  // namespace

TEST_CASE("Sequential: PyTorch-style names, modes, summary") {
    auto net = tiny_net();
    std::vector<std::string> names;
    for (auto& [n, t] : net->named_parameters()) names.push_back(n);
    CHECK(names == std::vector<std::string>{"features.0.weight", "features.0.bias", "classifier.1.weight",
                                            "classifier.1.bias"});
    CHECK(net->num_parameters() == 2 * 9 + 2 + 8 * 3 + 3);
    net->eval();
    for (auto& [n, l] : net->named_layers()) CHECK_FALSE(l->is_training());
    CHECK(net->summary().find("(features): Sequential()") != std::string::npos);
    CHECK(net->summary().find("    (0): Conv2d(1, 2, kernel_size=3, stride=1, padding=1)") != std::string::npos);
    check_layer(*net, distinct(Shape{2, 1, 4, 4}, 20), "sequential net");
    CHECK_THROWS_WITH_AS(static_cast<Sequential&>(net->child("features")).child("7"),
                         doctest::Contains("no child named '7'"), Error);
}

TEST_CASE("hooks: forward sees input and output, backward sees the gradient at the output") {
    auto net = tiny_net();
    net->eval();
    auto& features = static_cast<Sequential&>(net->child("features"));
    Layer& conv = features[0];
    Tensor seen_in, seen_out, seen_grad;
    const int fh = conv.on_forward([&](Layer&, const Tensor& in, const Tensor& out) {
        seen_in = in;
        seen_out = out;
    });
    const int bh = conv.on_backward([&](Layer&, const Tensor& g) -> std::optional<Tensor> {
        seen_grad = g;
        return std::nullopt;
    });
    Tensor x = rand_tensor(Shape{2, 1, 4, 4}, 21).set_requires_grad();
    Tensor y = (*net)(x);
    CHECK(seen_in.is_same(x));
    CHECK(seen_out.shape() == Shape{2, 2, 4, 4});
    Tensor seed = rand_tensor(y.shape(), 22);
    const auto g = autograd::grad({y}, {seen_out}, {seed}, true);
    autograd::backward(y, seed);
    REQUIRE(seen_grad.defined());
    CHECK(seen_grad.to_vector<float>() == g[0].to_vector<float>());

    // Replacing the gradient at the conv output zeroes the input gradient.
    conv.on_backward([&](Layer&, const Tensor& gr) -> std::optional<Tensor> { return zeros_like(gr); });
    Tensor x2 = rand_tensor(Shape{2, 1, 4, 4}, 23).set_requires_grad();
    autograd::backward((*net)(x2), seed);
    for (float v : x2.grad().to_vector<float>()) CHECK(v == 0.f);

    CHECK(conv.remove_hook(fh));
    CHECK(conv.remove_hook(bh));
    CHECK_FALSE(conv.remove_hook(bh));
    seen_in = Tensor();
    (*net)(x);
    CHECK_FALSE(seen_in.defined());
}

TEST_CASE("Sequential fuses Conv2d + ReLU unless a hook watches them: same outputs and gradients, bit for bit") {
    auto net = tiny_net();
    net->eval();
    auto& features = static_cast<Sequential&>(net->child("features"));
    const Tensor x = rand_tensor(Shape{3, 1, 4, 4}, 24);  // mixed signs: the ReLU zeroes some outputs
    const Tensor seed = rand_tensor(Shape{3, 3}, 25);
    // Input and parameter gradients of one forward and backward, and the logits.
    const auto run = [&] {
        net->zero_grad();
        Tensor xi = x.detach().set_requires_grad();
        Tensor y = (*net)(xi);
        autograd::backward(y, seed);
        std::vector<std::vector<float>> out{y.to_vector<float>(), xi.grad().to_vector<float>()};
        for (auto& p : net->parameters()) out.push_back(p.grad().to_vector<float>());
        return out;
    };
    // Unfused: a hook on the ReLU sees the convolution's pre-activation as its input.
    Tensor relu_in;
    const int h = features[1].on_forward([&](Layer&, const Tensor& in, const Tensor&) { relu_in = in; });
    const auto unfused = run();
    REQUIRE(relu_in.defined());
    bool negative_seen = false;
    for (float v : relu_in.to_vector<float>()) negative_seen = negative_seen || v < 0.f;
    CHECK(negative_seen);
    features[1].remove_hook(h);
    // Fused, with a graph: one node for both layers, owned by the convolution.
    relu_in = Tensor();
    const auto fused = run();
    CHECK(fused == unfused);
    {
        Tensor y = features(x.detach().set_requires_grad());
        REQUIRE(y.grad_fn()->next()[0].fn);
        const auto& conv_relu = y.grad_fn()->next()[0].fn;  // the pool's input came from the fused node
        CHECK(conv_relu->name() == "Conv2dReluBackward");
        CHECK(dynamic_cast<LayerNode&>(*conv_relu).layer() == &features[0]);
    }
    // Fused without a graph (inference).
    autograd::NoGradGuard no_grad;
    const Tensor y = (*net)(x);
    CHECK(y.to_vector<float>() == unfused[0]);
    CHECK_FALSE(y.requires_grad());
}

TEST_CASE("layers: bad input names the layer and the expected shape") {
    Conv2d conv(3, 8, 3);
    CHECK_THROWS_WITH_AS(conv(ones(Shape{1, 1, 5, 5})), doctest::Contains("expected a float32 input [N, 3, H, W]"),
                         Error);
    CHECK_THROWS_WITH_AS(conv(ones(Shape{3, 5, 5})), doctest::Contains("got float32 [3, 5, 5]"), Error);
    CHECK_THROWS_WITH_AS(conv(ones(Shape{1, 3, 2, 2})), doctest::Contains("does not fit an input of 2x2"), Error);
    Linear lin(12, 2);
    CHECK_THROWS_WITH_AS(lin(ones(Shape{1, 3, 2, 2})), doctest::Contains("flatten the feature maps first"), Error);
    MaxPool2d mp(2);
    CHECK_THROWS_WITH_AS(mp(ones(Shape{4, 4})), doctest::Contains("[N, C, H, W]"), Error);
    CHECK_THROWS_WITH_AS(MaxPool2d(2, 2, 2), doctest::Contains("at most half the kernel"), Error);
    CHECK_THROWS_WITH_AS(Conv2d(0, 1, 3), doctest::Contains("must be positive"), Error);
    CHECK_THROWS_WITH_AS(conv(Tensor()), doctest::Contains("undefined"), Error);
}

TEST_CASE("init: Kaiming and Xavier bounds and spread") {
    Generator g(24);
    Tensor w(Shape{64, 32, 3, 3});
    layers::init::kaiming_uniform(w, 0.f, layers::init::FanMode::In, g);
    const float bound = std::sqrt(2.f) * std::sqrt(3.f / (32 * 9));
    const auto v = w.to_vector<float>();
    CHECK(gb::testing::max_abs(v) <= bound);
    CHECK(gb::testing::max_abs(v) > 0.95f * bound);
    Tensor x(Shape{200, 300});
    layers::init::xavier_normal(x, 1.f, g);
    double s2 = 0;
    for (float e : x.to_vector<float>()) s2 += static_cast<double>(e) * e;
    // Expected variance 2 / (200 + 300) = 0.004; 60000 samples give ~0.6% relative error.
    CHECK(s2 / 60000 == doctest::Approx(0.004).epsilon(0.03));
}
