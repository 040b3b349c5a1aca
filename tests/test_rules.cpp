// layers/rule + the generic LRP path: every rule on a single Conv2d, Linear
// and AvgPool2d against Zennit 0.5.1 (tests/data/rules_*.safetensors, with the
// per-sample tolerance stored for each tensor), plus conservation in closed form.
#include "autograd/engine.h"
#include "layers/layer_node.h"
#include "layers/layers.h"
#include "reference.h"
#include "temp_dir.h"

using namespace gb;
using namespace gb::testing;
using layers::Rule;

namespace {

// Relevance at x of layer(x) under `rule`, from output relevance r.
Tensor relevance_of(layers::Layer& layer, const Tensor& input, const Tensor& r, const Rule& rule) {
    Tensor x = input.clone().set_requires_grad();
    Tensor y = layer(x);
    autograd::RunOptions o;
    o.mode = autograd::Mode::Relevance;
    o.accumulate_into_leaves = false;
    o.node_override = [&](autograd::Node& n, const Tensor& rel) -> std::optional<std::vector<Tensor>> {
        if (auto* ln = dynamic_cast<layers::LayerNode*>(&n)) return ln->relevance_with(rel, rule);
        return std::nullopt;
    };
    return autograd::run({y}, {r}, {x}, o)[0];
}

const std::vector<std::pair<std::string, Rule>>& linear_rules() {
    static const std::vector<std::pair<std::string, Rule>> rules = {
        {"epsilon", Rule::epsilon_rule(1e-6f)}, {"lrp0", Rule::lrp0()},
        {"zplus", Rule::zplus()},               {"alpha2beta1", Rule::alpha_beta(2, 1)},
        {"alpha1beta0", Rule::alpha_beta(1, 0)}, {"gamma0.25", Rule::gamma_rule(0.25f)},
        {"zbox", Rule::zbox(-1.f, 1.f)},        {"flat", Rule::flat()},
        {"wsquare", Rule::wsquare()}};
    return rules;
}

void check_layer_rules(layers::Layer& layer, const io::SafeTensors& ref, const std::string& what) {
    for (const char* in : {"pos", "mixed"}) {
        const Tensor& x = ref.at(std::string("input.") + in);
        {
            autograd::NoGradGuard ng;
            check_reference(layer(x), ref.at(std::string("output.") + in), reference_tol(ref, std::string("output.") + in),
                            what + " output." + in);
        }
        for (const auto& [name, rule] : linear_rules()) {
            const std::string key = "relevance_in." + name + "." + in;
            check_reference(relevance_of(layer, x, ref.at("relevance_out"), rule), ref.at(key), reference_tol(ref, key),
                            what + " " + key);
        }
    }
}

}  // namespace

TEST_CASE("rules on Conv2d(3, 5, 3, padding 1) match Zennit") {
    const io::SafeTensors ref = io::load_safetensors(data_file("rules_conv2d.safetensors"));
    layers::Conv2d conv(3, 5, 3, {.padding = 1});
    conv.weight().copy_from(ref.at("weight"));
    conv.bias().copy_from(ref.at("bias"));
    check_layer_rules(conv, ref, "conv2d");
}

TEST_CASE("Gamma on a non-negative input from the recorded output (one forward) equals its term form") {
    // The fast path derives z+ and z- from the recorded output and one forward with W+
    // (linearity); the term form (the same groups as a Custom rule) runs a forward per
    // group. Same mathematics, other rounding: 1e-5 of the map's max per sample.
    const io::SafeTensors ref = io::load_safetensors(data_file("rules_conv2d.safetensors"));
    layers::Conv2d conv(3, 5, 3, {.padding = 1});
    conv.weight().copy_from(ref.at("weight"));
    conv.bias().copy_from(ref.at("bias"));
    layers::Linear lin(20, 7);
    const io::SafeTensors lref = io::load_safetensors(data_file("rules_linear.safetensors"));
    lin.weight().copy_from(lref.at("weight"));
    lin.bias().copy_from(lref.at("bias"));
    for (float g : {0.25f, 1.f, 0.f}) {
        CAPTURE(g);
        const Rule gamma = Rule::gamma_rule(g), terms = Rule::custom_rule(gamma.expand());
        const Tensor& x = ref.at("input.pos");
        check_reference(relevance_of(conv, x, ref.at("relevance_out"), gamma),
                        relevance_of(conv, x, ref.at("relevance_out"), terms), 1e-5, "conv gamma");
        const Tensor& lx = lref.at("input.pos");
        check_reference(relevance_of(lin, lx, lref.at("relevance_out"), gamma),
                        relevance_of(lin, lx, lref.at("relevance_out"), terms), 1e-5, "linear gamma");
    }
}

TEST_CASE("rules on Linear(20, 7) match Zennit") {
    const io::SafeTensors ref = io::load_safetensors(data_file("rules_linear.safetensors"));
    layers::Linear lin(20, 7);
    lin.weight().copy_from(ref.at("weight"));
    lin.bias().copy_from(ref.at("bias"));
    check_layer_rules(lin, ref, "linear");
}

TEST_CASE("Norm on AvgPool2d(2) matches Zennit") {
    const io::SafeTensors ref = io::load_safetensors(data_file("rules_avgpool2d.safetensors"));
    layers::AvgPool2d pool(2);
    for (const char* in : {"pos", "mixed"}) {
        const std::string key = std::string("relevance_in.norm.") + in;
        check_reference(relevance_of(pool, ref.at(std::string("input.") + in), ref.at("relevance_out"), Rule::norm()),
                        ref.at(key), reference_tol(ref, key), key);
    }
}

TEST_CASE("conservation: with zero bias, LRP-0, epsilon, z+ and flat keep the total relevance") {
    // Closed form: sum_i R_in_i = sum_j R_out_j * z_j / stabilise(z_j); with zero bias and
    // small eps that is sum_j R_out_j to 1e-4 relative (z-plus with positive inputs likewise).
    Generator g(31);
    layers::Conv2d conv(2, 3, 3, {.padding = 1, .bias = false}, g);
    const Tensor x = rand_tensor(Shape{2, 2, 5, 5}, 32, 0.1f, 1.f);
    const Tensor r = rand_tensor(Shape{2, 3, 5, 5}, 33, 0.f, 1.f);
    double rsum = 0;
    for (float v : r.to_vector<float>()) rsum += v;
    for (const Rule& rule : {Rule::lrp0(), Rule::epsilon_rule(1e-9f), Rule::zplus(1e-9f), Rule::flat(1e-9f)}) {
        CAPTURE(rule.str());
        double s = 0;
        for (float v : relevance_of(conv, x, r, rule).to_vector<float>()) s += v;
        CHECK(s == doctest::Approx(rsum).epsilon(1e-4));
    }
    CHECK_THROWS_WITH_AS(Rule::alpha_beta(2, 2), doctest::Contains("alpha - beta = 1"), Error);
    layers::MaxPool2d mp(2);
    CHECK_THROWS_WITH_AS(relevance_of(mp, x, rand_tensor(Shape{2, 2, 2, 2}, 1), Rule::epsilon_rule()),
                         doctest::Contains("only linear-like layers"), Error);
}

TEST_CASE("a custom rule (modifiers for input and parameters) runs on any linear-like layer") {
    // Custom "x+ with W+" (z-plus without the negative term) equals AlphaBeta(1, 0) on positive inputs.
    layers::CustomRule c;
    layers::RuleTerm t;
    t.input = [](const Tensor& x) {
        Tensor o = x.clone();
        for (int64_t i = 0; i < o.numel(); ++i) o.data<float>()[i] = std::max(0.f, o.data<float>()[i]);
        return o;
    };
    t.param = [](const Tensor& p, bool) {
        Tensor o = p.clone();
        for (int64_t i = 0; i < o.numel(); ++i) o.data<float>()[i] = std::max(0.f, o.data<float>()[i]);
        return o;
    };
    c.groups = {layers::RuleGroup{{t}, 1.f, 0}};
    c.name = "positive-only";
    const Rule custom = Rule::custom_rule(c);
    CHECK(custom.str() == "positive-only");
    Generator g(34);
    layers::Linear lin(6, 4, true, g);
    layers::Conv2d conv(2, 3, 3, {.padding = 1}, g);
    const Tensor xl = rand_tensor(Shape{3, 6}, 35, 0.f, 1.f), rl = rand_tensor(Shape{3, 4}, 36);
    const Tensor xc = rand_tensor(Shape{2, 2, 4, 4}, 37, 0.f, 1.f), rc = rand_tensor(Shape{2, 3, 4, 4}, 38);
    CHECK(max_abs_diff(relevance_of(lin, xl, rl, custom).to_vector<float>(),
                       relevance_of(lin, xl, rl, Rule::alpha_beta(1, 0)).to_vector<float>()) < 1e-6f);
    CHECK(max_abs_diff(relevance_of(conv, xc, rc, custom).to_vector<float>(),
                       relevance_of(conv, xc, rc, Rule::alpha_beta(1, 0)).to_vector<float>()) < 1e-6f);
}

TEST_CASE("modified parameters are computed once per parameter version") {
    // A custom rule whose parameter modifier counts its calls: two relevance passes
    // reuse the cached W' and b'; changing the weight (new version) recomputes them.
    int calls = 0;
    layers::CustomRule c;
    layers::RuleTerm t;
    t.param = [&calls](const Tensor& p, bool) {
        ++calls;
        return p.clone();
    };
    t.cache_tag = "counting-identity";
    c.groups = {layers::RuleGroup{{t}, 1.f, 0}};
    const Rule rule = Rule::custom_rule(c);
    Generator g(40);
    layers::Linear lin(5, 3, true, g);
    const Tensor x = rand_tensor(Shape{2, 5}, 41), r = rand_tensor(Shape{2, 3}, 42);
    const auto first = relevance_of(lin, x, r, rule).to_vector<float>();
    CHECK(calls == 2);  // weight and bias
    CHECK(relevance_of(lin, x, r, rule).to_vector<float>() == first);
    CHECK(calls == 2);
    Tensor w = lin.weight();
    fill(w, 0.5f);
    relevance_of(lin, x, r, rule);
    CHECK(calls == 3);  // the weight changed; the bias did not
    // Equal to LRP-epsilon: the identity modifier leaves the rule unchanged.
    CHECK(max_abs_diff(relevance_of(lin, x, r, rule).to_vector<float>(),
                       relevance_of(lin, x, r, Rule::epsilon_rule()).to_vector<float>()) < 1e-6f);
}

TEST_CASE("a plain term on Linear divides by the recorded output, recomputed once the output is written to") {
    Generator g(43);
    layers::Linear lin(6, 4, true, g);
    const Tensor x0 = rand_tensor(Shape{3, 6}, 44), r = rand_tensor(Shape{3, 4}, 45);
    const auto relevance = [&](bool overwrite_output) {
        Tensor x = x0.clone().set_requires_grad();
        Tensor y = lin(x);
        if (overwrite_output) fill(y, 7.f);  // a new storage version: the node must not divide by it
        autograd::RunOptions o;
        o.mode = autograd::Mode::Relevance;
        o.accumulate_into_leaves = false;
        o.node_override = [&](autograd::Node& n, const Tensor& rel) -> std::optional<std::vector<Tensor>> {
            if (auto* ln = dynamic_cast<layers::LayerNode*>(&n)) return ln->relevance_with(rel, Rule::epsilon_rule(1e-6f));
            return std::nullopt;
        };
        return autograd::run({y}, {r}, {x}, o)[0].to_vector<float>();
    };
    // The recorded output is bit for bit the recomputed forward, so both passes agree exactly.
    CHECK(relevance(false) == relevance(true));
    // And both are epsilon-LRP in closed form: x_i * sum_j W_ji r_j / (z_j + eps sign z_j).
    const auto x = x0.to_vector<float>(), w = lin.weight().to_vector<float>(), b = lin.bias().to_vector<float>();
    const auto rv = r.to_vector<float>(), got = relevance(false);
    double worst = 0;
    for (int n = 0; n < 3; ++n)
        for (int i = 0; i < 6; ++i) {
            double c = 0;
            for (int j = 0; j < 4; ++j) {
                double z = b[j];
                for (int k = 0; k < 6; ++k) z += double(w[j * 6 + k]) * x[n * 6 + k];
                c += w[j * 6 + i] * rv[n * 4 + j] / (z + (z >= 0 ? 1e-6 : -1e-6));
            }
            worst = std::max(worst, std::fabs(c * x[n * 6 + i] - got[n * 6 + i]) / (1.0 + std::fabs(c * x[n * 6 + i])));
        }
    CHECK(worst < 1e-4);  // float rounding of z against the double reference, relative
}

namespace {

// The rectifier rules' per-element definitions, as explain/gradient_methods.cpp computed them in host loops
// before they became rules (the Captum-matched conventions): the layer rules must give these bit for bit.
float guided_reference(float x, float g) { return x > 0.f && g > 0.f ? g : 0.f; }
float deconvnet_reference(float g) { return g > 0.f ? g : 0.f; }
float deeplift_reference(float x, float x0, float g) {
    const float d = x - x0;
    const float m = std::fabs(d) < 1e-10f ? (x > 0.f ? 1.f : 0.f) : (std::max(x, 0.f) - std::max(x0, 0.f)) / d;
    return g * m;
}

// Relevance at x of relu(x) under `rule`, recorded under KeepForRules (as explain::Trace records).
std::vector<float> rectifier_relevance(const std::vector<float>& x, const std::vector<float>& r, const Rule& rule) {
    layers::ReLU relu;
    const int64_t n = static_cast<int64_t>(x.size());
    Tensor xt = from_vector(x, Shape{n}).set_requires_grad();
    Tensor y;
    {
        layers::KeepForRules keep;
        y = relu(xt);
    }
    auto* node = dynamic_cast<layers::LayerNode*>(y.grad_fn().get());
    REQUIRE(node != nullptr);
    return node->relevance_with(from_vector(r, Shape{n}), rule)[0].to_vector<float>();
}

}  // namespace

TEST_CASE("rectifier rules on ReLU: guided backprop, DeconvNet and DeepLIFT are their per-element definitions, bit for bit") {
    // Inputs and reference inputs covering every case of DeepLIFT: equal (x = x0 > 0, x = x0 < 0), closer than 1e-10
    // across zero and on one side, a sign change, both negative, and the gradient's signs.
    const std::vector<float> x = {0.5f, -0.5f, 4e-11f, 3e-11f, 0.75f, -0.25f, -2.f, 1.5f, 0.f, 2.f, -1e-12f, 1e-3f};
    const std::vector<float> x0 = {0.5f, -0.5f, -4e-11f, 1e-11f, -0.5f, 0.5f, -1.f, 0.25f, 0.f, 2.f + 1e-7f, 1e-12f, 1e-3f + 1e-11f};
    const std::vector<float> g = {1.f, -2.f, 0.5f, -0.75f, 3.f, -1.f, 2.f, -0.5f, 1.f, 0.3f, -0.7f, 0.9f};
    std::vector<float> y0(x0.size());
    for (size_t i = 0; i < x0.size(); ++i) y0[i] = std::max(x0[i], 0.f);
    const int64_t n = static_cast<int64_t>(x.size());
    const auto guided = rectifier_relevance(x, g, Rule::guided_backprop());
    const auto deconv = rectifier_relevance(x, g, Rule::deconvnet());
    const auto lift = rectifier_relevance(x, g, Rule::deeplift_rescale(from_vector(x0, Shape{n}), from_vector(y0, Shape{n})));
    for (size_t i = 0; i < x.size(); ++i) {
        CAPTURE(i);
        CHECK(guided[i] == guided_reference(x[i], g[i]));
        CHECK(deconv[i] == deconvnet_reference(g[i]));
        CHECK(lift[i] == deeplift_reference(x[i], x0[i], g[i]));
    }
}

TEST_CASE("rules go to the layers that can apply them; DeepLIFT needs the input kept for rules") {
    layers::ReLU relu;
    Tensor x = from_vector(std::vector<float>{1.f, -1.f}, Shape{2}).set_requires_grad();
    Tensor y = relu(x);  // not under KeepForRules: the node keeps its output only
    auto* node = dynamic_cast<layers::LayerNode*>(y.grad_fn().get());
    REQUIRE(node != nullptr);
    const Tensor r = from_vector(std::vector<float>{1.f, 1.f}, Shape{2});
    CHECK_THROWS_WITH_AS(node->relevance_with(r, Rule::zplus()), doctest::Contains("cannot be applied to ReluBackward"), Error);
    CHECK_THROWS_WITH_AS(node->relevance_with(r, Rule::deeplift_rescale(r, r)), doctest::Contains("KeepForRules"), Error);
    CHECK(node->relevance_with(r, Rule::guided_backprop())[0].to_vector<float>() == std::vector<float>{1.f, 0.f});
    Generator gen(3);
    layers::Linear lin(2, 2, true, gen);
    Tensor z = lin(from_vector(std::vector<float>{1.f, -1.f}, Shape{1, 2}).set_requires_grad());
    auto* lnode = dynamic_cast<layers::LayerNode*>(z.grad_fn().get());
    REQUIRE(lnode != nullptr);
    CHECK_THROWS_WITH_AS(lnode->relevance_with(r.view(Shape{1, 2}), Rule::guided_backprop()), doctest::Contains("rectifiers (ReLU)"),
                         Error);
    CHECK(relu.has(layers::Capability::Rectifier));
    CHECK(lin.has(layers::Capability::FullyConnected));
    CHECK(lin.has(layers::Capability::LinearLike));
    CHECK(!lin.has(layers::Capability::Rectifier));
}
