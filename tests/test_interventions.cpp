// explain/interventions: do(a = v) through the layers' forward replace hooks. Exact closed-form cases: a channel
// whose outgoing weights are zero changes nothing whatever it is set to; do() with the units' own values (given,
// or resampled from a reference set holding only the input itself) is the identity; do(zero) on a conv channel
// is the model with that filter and bias zeroed, for the logits, the gradient and LRP of explain::Trace. The
// study's effects equal the brute-force differences; errors name the layer, channel or unit.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/functions.h"
#include "explain/composite.h"
#include "explain/interventions.h"
#include "explain/perturbation.h"
#include "explain/target.h"
#include "explain/trace.h"
#include "layers/layers.h"
#include "testing.h"

using namespace gb;
using namespace gb::testing;
using namespace gb::explain;

namespace {

// conv(1 -> 3, 3x3, pad 1) -> ReLU -> conv(3 -> 2, 3x3, pad 1) -> ReLU -> Flatten -> Linear(2*6*6 -> 4); paths 0..5.
struct Net {
    std::shared_ptr<layers::Sequential> model = std::make_shared<layers::Sequential>();
    std::shared_ptr<layers::Conv2d> c1, c2;
    explicit Net(uint64_t seed) {
        Generator g(seed);
        c1 = model->add(std::make_shared<layers::Conv2d>(1, 3, 3, layers::Conv2dOptions{1, 1, 1, true}, g));
        model->add(std::make_shared<layers::ReLU>());
        c2 = model->add(std::make_shared<layers::Conv2d>(3, 2, 3, layers::Conv2dOptions{1, 1, 1, true}, g));
        model->add(std::make_shared<layers::ReLU>());
        model->add(std::make_shared<layers::Flatten>());
        model->add(std::make_shared<layers::Linear>(2 * 6 * 6, 4, true, g));
        model->eval();
    }
};

const Shape kInput{1, 6, 6};

std::vector<float> logits_of(layers::Layer& m, const Tensor& x) { return predict(m, x).to_vector<float>(); }

}  // namespace

TEST_CASE("do() on a channel whose outgoing weights are zero changes nothing, exactly") {
    Net net(3);
    // Zero every weight of the second conv that reads channel 1 of the first conv's output (input channel 1).
    auto w = net.c2->weight().to_vector<float>();
    for (int64_t o = 0; o < 2; ++o)
        for (int64_t k = 0; k < 9; ++k) w[static_cast<size_t>((o * 3 + 1) * 9 + k)] = 0.f;
    net.c2->weight().copy_from(from_vector(w, net.c2->weight().shape()));
    const Tensor x = rand_tensor(Shape{5, 1, 6, 6}, 4, 0.f, 1.f);
    const Tensor ref = rand_tensor(Shape{7, 1, 6, 6}, 5, 0.f, 1.f);
    const auto clean = logits_of(*net.model, x);
    const LayerOutputs outputs = record_outputs(*net.model, ref, {"0", "1"});
    for (const char* layer : {"0", "1"}) {  // the conv's output and the ReLU's
        for (const DoValue v : {DoValue::Zero, DoValue::Constant, DoValue::Mean, DoValue::Resample}) {
            CAPTURE(layer);
            CAPTURE(do_value_name(v, 7.f));
            const Intervention iv(*net.model, kInput, {DoSpec{layer, {1}, {}, v, 7.f, {}}}, outputs, 9);
            CHECK(logits_of(*net.model, x) == clean);
        }
    }
    // The same intervention on channel 0, whose weights are not zero, does change the output (the check above can fail).
    {
        const Intervention iv(*net.model, kInput, {DoSpec{"0", {0}, {}, DoValue::Constant, 7.f, {}}});
        CHECK(logits_of(*net.model, x) != clean);
    }
    CHECK(logits_of(*net.model, x) == clean);  // removed with the object
}

TEST_CASE("do() with the units' own values is the identity, exactly") {
    Net net(6);
    const Tensor x = rand_tensor(Shape{3, 1, 6, 6}, 7, 0.f, 1.f);
    const auto clean = logits_of(*net.model, x);
    const LayerOutputs own = record_outputs(*net.model, x, {"0", "2", "5"});
    for (const char* layer : {"0", "2", "5"}) {
        CAPTURE(layer);
        DoSpec all{layer, {}, {}, DoValue::Given, 0.f, own.at(layer)};
        const Intervention iv(*net.model, kInput, {all});
        CHECK(logits_of(*net.model, x) == clean);
    }
    // Some channels and units only, on two layers at once.
    {
        const Intervention iv(*net.model, kInput,
                              {DoSpec{"0", {2}, {5, 40}, DoValue::Given, 0.f, own.at("0")}, DoSpec{"2", {1}, {}, DoValue::Given, 0.f, own.at("2")}});
        CHECK(logits_of(*net.model, x) == clean);
    }
    // Resampling from a reference set that holds only the input itself.
    const Tensor one = x.narrow(1, 1).clone();
    const Intervention iv(*net.model, kInput, {DoSpec{"2", {0, 1}, {}, DoValue::Resample, 0.f, {}}}, record_outputs(*net.model, one, {"2"}), 3);
    CHECK(logits_of(*net.model, one) == std::vector<float>(clean.begin() + 4, clean.begin() + 8));
}

TEST_CASE("explain::Trace on an intervened model: do(zero) on a conv channel is that filter and bias zeroed") {
    // Reference: the same network with conv 0's filter 2 and its bias set to zero, whose channel 2 is then 0 as
    // under do(zero). Logits and the gradient must agree exactly up to float rounding (1e-6 of the largest value);
    // LRP (epsilon-plus-flat) too: the zeroed filter sends relevance to nothing, the intervention drops it.
    Net net(8), zeroed(8);
    auto w = zeroed.c1->weight().to_vector<float>();
    for (int64_t k = 0; k < 9; ++k) w[static_cast<size_t>(2 * 9 + k)] = 0.f;
    zeroed.c1->weight().copy_from(from_vector(w, zeroed.c1->weight().shape()));
    auto b = zeroed.c1->bias().to_vector<float>();
    b[2] = 0.f;
    zeroed.c1->bias().copy_from(from_vector(b, zeroed.c1->bias().shape()));
    const Tensor x = rand_tensor(Shape{2, 1, 6, 6}, 9, 0.f, 1.f);
    const Intervention iv(*net.model, kInput, {DoSpec{"0", {2}, {}, DoValue::Zero, 0.f, {}}});
    const Trace a(*net.model, x), r(*zeroed.model, x);
    auto close = [](const std::string& what, const Tensor& got, const Tensor& want) {
        const auto g = got.to_vector<float>(), w2 = want.to_vector<float>();
        REQUIRE(g.size() == w2.size());
        float scale = 0.f;
        for (float v : w2) scale = std::max(scale, std::fabs(v));
        REQUIRE(scale > 0.f);
        for (size_t i = 0; i < g.size(); ++i) {
            CAPTURE(what);
            CAPTURE(i);
            CHECK(std::fabs(g[i] - w2[i]) <= 1e-6f * scale);
        }
    };
    close("logits", a.logits(), r.logits());
    const Tensor seed = r.seed({Target::of(1)});
    close("gradient", a.gradient(seed)[0], r.gradient(seed)[0]);
    const Composite c = Composite::preset("epsilon-plus-flat");
    const auto ra = a.relevance(c, seed, {"2"}), rr = r.relevance(c, seed, {"2"});
    close("LRP at the input", ra[0], rr[0]);
    close("LRP at layer 2", ra[1], rr[1]);
    // The intervened channel passes no gradient below it: at conv 0's output, channel 2's gradient is the
    // replaced tensor's (what arrives from above), but the input gradient ignores it (checked above).
    CHECK(a.layer_output("0").narrow(0, 1).to_vector<float>()[2 * 36] == 0.f);
}

TEST_CASE("intervention errors name the layer, channel or unit; values parse") {
    Net net(10);
    CHECK_THROWS_WITH_AS(Intervention(*net.model, kInput, {DoSpec{"7", {0}, {}, DoValue::Zero, 0.f, {}}}),
                         doctest::Contains("no layer '7' in the model (layers: 0, 1, 2, 3, 4, 5)"), Error);
    CHECK_THROWS_WITH_AS(Intervention(*net.model, kInput, {DoSpec{"2", {2}, {}, DoValue::Zero, 0.f, {}}}),
                         doctest::Contains("channel 2 is outside the 2 channels of 2"), Error);
    CHECK_THROWS_WITH_AS(Intervention(*net.model, kInput, {DoSpec{"5", {}, {4}, DoValue::Zero, 0.f, {}}}),
                         doctest::Contains("unit 4 is outside the 4 units of 5"), Error);
    CHECK_THROWS_WITH_AS(Intervention(*net.model, kInput, {DoSpec{"0", {0}, {}, DoValue::Mean, 0.f, {}}}),
                         doctest::Contains("needs reference outputs"), Error);
    float c = 0.f;
    CHECK(parse_do_value("constant:-2.5", &c) == DoValue::Constant);
    CHECK(c == -2.5f);
    CHECK(parse_do_value("resample", &c) == DoValue::Resample);
    CHECK_THROWS_WITH_AS(parse_do_value("constant:x", &c), doctest::Contains("needs a finite number"), Error);
    CHECK_THROWS_WITH_AS(parse_do_value("one", &c), doctest::Contains("expected zero, mean, constant:V or resample"), Error);
    const Tensor x = rand_tensor(Shape{2, 1, 6, 6}, 1, 0.f, 1.f);
    InterventionStudyOptions o;
    o.layer = "conv";
    CHECK_THROWS_WITH_AS(intervention_study(*net.model, x, {}, {}, o), doctest::Contains("no layer 'conv'"), Error);
    o.layer = "2";
    o.channels = {3};
    CHECK_THROWS_WITH_AS(intervention_study(*net.model, x, {}, {}, o), doctest::Contains("channel 3 is outside the 2 channels"), Error);
    o.channels = {};
    o.value = DoValue::Mean;
    CHECK_THROWS_WITH_AS(intervention_study(*net.model, x, {}, {}, o), doctest::Contains("needs reference images"), Error);
}

TEST_CASE("intervention study: effects are the brute-force differences; rankings, overlaps and ablations are consistent") {
    Net net(12);
    const Tensor x = rand_tensor(Shape{6, 1, 6, 6}, 13, 0.f, 1.f);
    const std::vector<int32_t> labels{0, 1, 2, 3, 0, 1};
    InterventionStudyOptions o;
    o.layer = "0";
    int64_t calls = 0;
    const InterventionStudy s = intervention_study(*net.model, x, labels, {}, o, [&](int64_t, int64_t) { ++calls; });
    REQUIRE(s.channels == std::vector<int64_t>{0, 1, 2});
    CHECK(s.ks == std::vector<int64_t>{1, 2, 3});
    CHECK(calls == 3 + 5 * 3);
    const auto clean = logits_of(*net.model, x);
    const auto el = s.effect_logits.to_vector<float>();
    for (int64_t c = 0; c < 3; ++c) {
        const Intervention iv(*net.model, kInput, {DoSpec{"0", {c}, {}, DoValue::Zero, 0.f, {}}});
        const auto l = logits_of(*net.model, x);
        for (int64_t k = 0; k < 4; ++k) {
            double d = 0;
            for (int64_t n = 0; n < 6; ++n) d += double(clean[size_t(n * 4 + k)]) - double(l[size_t(n * 4 + k)]);
            CHECK(el[size_t(c * 4 + k)] == doctest::Approx(d / 6).epsilon(1e-6));
        }
    }
    // Every ranking holds every channel once; the causal one is sorted by the causal effect.
    for (const auto& [name, order] : s.rankings) {
        auto sorted = order;
        std::sort(sorted.begin(), sorted.end());
        CHECK(sorted == s.channels);
    }
    const auto& causal = s.rankings[0].second;
    CHECK(s.causal[size_t(causal[0])] >= s.causal[size_t(causal[1])]);
    CHECK(s.causal[size_t(causal[1])] >= s.causal[size_t(causal[2])]);
    for (const auto& a : s.agreement) CHECK(a.top_k_overlap.back() == 1.0);  // top-all: the same set
    // With every channel intervened on, all rankings give the same accuracy.
    const double all = s.ablation_accuracy.at("causal").back();
    for (const auto& [name, v] : s.ablation_accuracy) CHECK(v.back() == all);
    int64_t right = 0;
    for (int64_t n = 0; n < 6; ++n)
        right += std::max_element(clean.begin() + n * 4, clean.begin() + n * 4 + 4) - (clean.begin() + n * 4) == labels[size_t(n)];
    CHECK(s.accuracy == doctest::Approx(double(right) / 6));
}

TEST_CASE("forward replace hooks: the returned tensor is the layer's output for the caller and the forward hooks") {
    Net net(14);
    const Tensor x = rand_tensor(Shape{2, 1, 6, 6}, 15, 0.f, 1.f);
    layers::Layer& last = *net.model->children().back().second;
    Tensor seen;
    const int replace = last.on_forward_replace([](layers::Layer&, const Tensor&, const Tensor& out) {
        return std::optional<Tensor>(scale(out, 2.f));
    });
    const int look = last.on_forward([&](layers::Layer&, const Tensor&, const Tensor& out) { seen = out.clone(); });
    const Tensor doubled = predict(*net.model, x);
    CHECK(seen.to_vector<float>() == doubled.to_vector<float>());
    last.remove_hook(replace);
    const auto plain = predict(*net.model, x).to_vector<float>();
    const auto d = doubled.to_vector<float>();
    for (size_t i = 0; i < plain.size(); ++i) CHECK(d[i] == 2.f * plain[i]);
    last.remove_hook(look);
    const int bad = last.on_forward_replace([](layers::Layer&, const Tensor&, const Tensor&) {
        return std::optional<Tensor>(zeros(Shape{1, 1}));
    });
    CHECK_THROWS_WITH_AS(predict(*net.model, x), doctest::Contains("Linear: a forward replace hook returned [1, 1] for an output [2, 4]"), Error);
    last.remove_hook(bad);
}
