// models/: VGG configurations and names, agreement with PyTorch on the stored
// reference models (tests/data/vgg_mini*.safetensors), checkpoints.
#include <filesystem>

#include "autograd/grad_mode.h"
#include "models/checkpoint.h"
#include "models/registry.h"
#include "reference.h"
#include "temp_dir.h"

using namespace gb;
using namespace gb::testing;

TEST_CASE("registry: VGG family shapes and torchvision names") {
    auto mini = models::make_model("vgg-mini");
    std::vector<std::string> names;
    for (auto& [n, t] : mini->state()) names.push_back(n + t.shape().str());
    CHECK(names == std::vector<std::string>{"features.0.weight[32, 1, 3, 3]", "features.0.bias[32]",
                                            "features.2.weight[32, 32, 3, 3]", "features.2.bias[32]",
                                            "features.5.weight[64, 32, 3, 3]", "features.5.bias[64]",
                                            "features.7.weight[64, 64, 3, 3]", "features.7.bias[64]",
                                            "classifier.0.weight[256, 3136]", "classifier.0.bias[256]",
                                            "classifier.3.weight[10, 256]", "classifier.3.bias[10]"});
    auto bn = models::make_model("vgg11-bn", {3, 32, 100});
    CHECK(bn->feature_size() == 1);
    CHECK(bn->feature_channels() == 512);
    autograd::NoGradGuard ng;
    bn->eval();
    CHECK((*bn)(rand_tensor(Shape{2, 3, 32, 32}, 1)).shape() == Shape{2, 100});
    // 28x28 input: the fifth pool would go below 1x1 and is left out.
    auto v11 = models::make_model("vgg11", {1, 28, 10});
    CHECK(v11->feature_size() == 1);
    CHECK((*v11)(rand_tensor(Shape{1, 1, 28, 28}, 2)).shape() == Shape{1, 10});
    CHECK(models::model_names().size() == 10);
    CHECK_THROWS_WITH_AS(models::make_model("vgg12"), doctest::Contains("unknown model 'vgg12' (known: vgg-mini"), Error);
    CHECK_THROWS_WITH_AS((*mini)(ones(Shape{1, 1, 32, 32})), doctest::Contains("expected input [N, 1, 28, 28]"), Error);
}

TEST_CASE("vgg-mini and vgg-mini-bn reproduce PyTorch's logits and activations") {
    struct Case {
        const char* model;
        const char* prefix;
        std::vector<std::pair<std::string, std::string>> acts;  // hook layer -> reference tensor
    };
    const std::vector<Case> cases = {
        {"vgg-mini", "vgg_mini", {{"features.4", "act.features.4"}, {"features.7", "act.features.7"}, {"features.9", "act.features.9"}}},
        {"vgg-mini-bn", "vgg_mini_bn", {{"features.6", "act.features.6"}, {"features.10", "act.features.10"}, {"features.13", "act.features.13"}}},
    };
    for (const auto& c : cases) {
        CAPTURE(c.model);
        const io::SafeTensors data = io::load_safetensors(data_file(std::string(c.prefix) + ".data.safetensors"));
        models::Checkpoint ck = models::load_checkpoint(data_file(std::string(c.prefix) + ".model.safetensors"), c.model);
        std::map<std::string, Tensor> seen;
        for (auto& [path, layer] : ck.model->named_layers())
            for (const auto& [hook, ref] : c.acts)
                if (path == hook)
                    layer->on_forward([&seen, ref = ref](layers::Layer&, const Tensor&, const Tensor& out) { seen[ref] = out; });
        autograd::NoGradGuard ng;
        const Tensor logits = (*ck.model)(data.at("input"));
        check_reference(logits, data.at("logits"), reference_tol(data, "logits"), std::string(c.model) + " logits");
        for (const auto& [hook, ref] : c.acts) {
            REQUIRE(seen.count(ref));
            check_reference(seen[ref], data.at(ref), reference_tol(data, ref), ref);
        }
    }
}

TEST_CASE("checkpoints: round trip rebuilds the model from metadata alone") {
    TempDir dir("ckpt");
    Generator g(3);
    auto model = models::make_model("vgg-mini-bn", {1, 12, 4}, g);
    models::save_checkpoint(dir.path("m.safetensors"), *model, {{"note", "hello"}});
    models::Checkpoint ck = models::load_checkpoint(dir.path("m.safetensors"));
    CHECK(ck.model->config().name == "vgg-mini-bn");
    CHECK(ck.model->config().input_size == 12);
    CHECK(ck.model->config().num_classes == 4);
    CHECK(ck.metadata().at("note") == "hello");
    const auto a = model->state(), b = ck.model->state();
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].first == b[i].first);
        CHECK(a[i].second.to_vector<float>() == b[i].second.to_vector<float>());
    }
    CHECK_THROWS_WITH_AS(models::load_checkpoint(dir.path("m.safetensors"), "vgg-mini"),
                         doctest::Contains("holds a 'vgg-mini-bn' model, not 'vgg-mini'"), Error);
}

TEST_CASE("checkpoints: every mismatch is reported at once") {
    const io::SafeTensors bn_file = io::load_safetensors(data_file("vgg_mini_bn.model.safetensors"));
    auto mini = models::make_model("vgg-mini");
    try {
        models::load_state(*mini, bn_file);
        FAIL("loading a vgg-mini-bn state into vgg-mini must fail");
    } catch (const Error& e) {
        const std::string msg = e.what();
        CHECK(msg.find("unexpected 'features.3.weight'") != std::string::npos);
        CHECK(msg.find("missing 'features.5.weight'") != std::string::npos);
        CHECK(msg.find("unexpected 'features.1.running_mean'") != std::string::npos);
        CHECK(msg.find("'features.7.weight' has shape [64, 32, 3, 3], the model needs [64, 64, 3, 3]") != std::string::npos);
        CHECK(msg.find("problems") != std::string::npos);
    }
    CHECK_THROWS_WITH_AS(models::load_checkpoint(data_file("vgg_mini.model.safetensors")),
                         doctest::Contains("name the model"), Error);
}
