// explain/model_methods: activation maximisation raises its objective (a class
// logit, a channel's mean activation); channel importance equals the closed form
// |w_c| mean|x| on a 1x1 convolution; counterfactuals reach the requested class.
#include <doctest/doctest.h>

#include <cmath>

#include "explain/model_methods.h"
#include "explain/perturbation.h"
#include "layers/conv2d.h"
#include "models/checkpoint.h"
#include "temp_dir.h"
#include "testing.h"
#include "toy_models.h"

using namespace gb;
using namespace gb::testing;
using namespace gb::explain;

TEST_CASE("activation maximisation raises class logits and channel activations of vgg-mini") {
    models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini.model.safetensors"), "vgg-mini");
    ActivationMaxOptions o;
    o.steps = 20;
    o.seed = 1;
    const std::vector<Objective> objectives{{"", 0}, {"", 7}, {"features.0", 3}};
    const ActivationMaxResult r = activation_maximisation(*ck.model, Shape{1, 28, 28}, objectives, o);
    CHECK(r.images.shape() == Shape{3, 1, 28, 28});
    // Class logits rise by more than 1 (measured: from about -4 and 0.6 to about 65). The channel's kernel
    // sums to -0.39 with bias -0.30, so its mean can only rise from -0.49 (grey start) towards
    // about -0.30 (a black image); measured: -0.304.
    CHECK(r.value[0] > r.start[0] + 1.0);
    CHECK(r.value[1] > r.start[1] + 1.0);
    CHECK(r.value[2] > r.start[2] + 0.1);
    // The reported values are the objectives at the returned images; the class images prefer their class.
    const auto v = objective_values(*ck.model, r.images, objectives);
    for (size_t i = 0; i < v.size(); ++i) CHECK(v[i] == doctest::Approx(r.value[i]).epsilon(1e-5));
    const auto logits = predict(*ck.model, r.images).to_vector<float>();
    CHECK(logits[0] > logits[7]);
    CHECK(logits[10 + 7] > logits[10 + 0]);
    for (float p : r.images.to_vector<float>()) CHECK((p >= 0.f && p <= 1.f));
    CHECK_THROWS_WITH_AS(activation_maximisation(*ck.model, Shape{1, 28, 28}, {{"", 10}}, o), doctest::Contains("class 10 is outside the 10 classes"), Error);
    CHECK_THROWS_WITH_AS(activation_maximisation(*ck.model, Shape{1, 28, 28}, {{"features.99", 0}}, o), doctest::Contains("no layer 'features.99'"), Error);
}

TEST_CASE("channel importance: mean |activation| of a 1x1 convolution is |w_c| mean |x|, sorted") {
    auto net = std::make_shared<layers::Sequential>();
    auto conv = net->add(std::make_shared<layers::Conv2d>(1, 3, 1, layers::Conv2dOptions{1, 0, 1, false}));
    auto w = conv->weight();
    w.copy_from(from_vector(std::vector<float>{0.5f, -2.f, 1.f}, w.shape()));
    net->add(std::make_shared<layers::Flatten>());
    const Tensor x = rand_tensor(Shape{5, 1, 4, 4}, 91);
    double mean_abs = 0;
    for (float v : x.to_vector<float>()) mean_abs += std::fabs(v) / 80.0;
    const auto imp = channel_importance(*net, x, {}, 2);
    REQUIRE(imp.size() == 1);
    CHECK(imp[0].layer == "0");
    REQUIRE(imp[0].channels.size() == 3);
    CHECK(imp[0].channels[0].first == 1);
    CHECK(imp[0].channels[1].first == 2);
    CHECK(imp[0].channels[2].first == 0);
    CHECK(imp[0].channels[0].second == doctest::Approx(2.0 * mean_abs).epsilon(1e-5));
    CHECK(imp[0].channels[2].second == doctest::Approx(0.5 * mean_abs).epsilon(1e-5));
    CHECK_THROWS_WITH_AS(channel_importance(*net, x, {"5"}), doctest::Contains("no layer '5'"), Error);
}

TEST_CASE("counterfactuals reach the requested class near the input") {
    LinearModel lm(1, 6, 6, 3, 95);
    const Tensor x = rand_tensor(Shape{3, 1, 6, 6}, 96, 0.f, 1.f);
    const auto pred = predict(*lm.model, x).to_vector<float>();
    std::vector<int32_t> targets;
    for (int n = 0; n < 3; ++n) {
        const int32_t p = static_cast<int32_t>(std::max_element(pred.begin() + n * 3, pred.begin() + n * 3 + 3) - (pred.begin() + n * 3));
        targets.push_back((p + 1) % 3);  // another class than the predicted one
    }
    CounterfactualOptions o;
    o.steps = 500;
    o.lr = 0.02f;
    o.low = -1.f;
    o.high = 2.f;
    const auto cf = counterfactuals(*lm.model, x, targets, o);
    for (int n = 0; n < 3; ++n) {
        const Counterfactual& c = cf[size_t(n)];
        CAPTURE(n);
        CHECK(c.reached);
        CHECK(c.new_class == targets[size_t(n)]);
        CHECK(c.target_probability >= 0.5);
        CHECK(c.distance > 0.0);
        CHECK(c.steps > 0);
        // The reported values belong to the returned input.
        const auto l = predict(*lm.model, c.input.view(Shape{1, 1, 6, 6})).to_vector<float>();
        CHECK(std::max_element(l.begin(), l.end()) - l.begin() == c.new_class);
    }
}
