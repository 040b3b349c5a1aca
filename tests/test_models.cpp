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
    auto bn = models::make_model("vgg11-bn-small", {3, 32, 100});
    CHECK(bn->feature_size() == 1);
    CHECK(bn->feature_channels() == 512);
    autograd::NoGradGuard ng;
    bn->eval();
    CHECK((*bn)(rand_tensor(Shape{2, 3, 32, 32}, 1)).shape() == Shape{2, 100});
    // 28x28 input: the fifth pool would go below 1x1 and is left out.
    auto v11 = models::make_model("vgg11-small", {1, 28, 10});
    CHECK(v11->feature_size() == 1);
    CHECK((*v11)(rand_tensor(Shape{1, 1, 28, 28}, 2)).shape() == Shape{1, 10});
    CHECK(models::model_names().size() == 18);
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
    // Loading builds the model without initialising it (every value is loaded): no random draws.
    const uint64_t draws = default_generator().offset();
    models::Checkpoint ck = models::load_checkpoint(dir.path("m.safetensors"));
    CHECK(default_generator().offset() == draws);
    models::make_model("vgg-mini", {}, default_generator());  // initialisers are back on afterwards
    CHECK(default_generator().offset() > draws);
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
    // Without a name, a plain vgg-mini state dict is read as the torchvision layout it
    // also fits (classifier.0 takes 64*7*7): AdaptiveAvgPool2d((7, 7)) is the identity
    // on its 28x28 input's 7x7 map, so the logits are vgg-mini's.
    models::Checkpoint inferred = models::load_checkpoint(data_file("vgg_mini.model.safetensors"));
    CHECK(inferred.model->config().name == "vgg-custom");
    CHECK(inferred.model->config().avgpool == 7);
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini.data.safetensors"));
    autograd::NoGradGuard ng;
    check_reference((*inferred.model)(data.at("input")), data.at("logits"), 1e-5, "inferred vgg-mini logits");
}

TEST_CASE("registry: torchvision layouts, small variants, spellings and family defaults") {
    const models::VggConfig tv = models::model_config("vgg16_bn");
    CHECK(tv.name == "vgg16-bn");
    CHECK(tv.batch_norm);
    CHECK(tv.avgpool == 7);
    CHECK(tv.hidden == std::vector<int64_t>{4096, 4096});
    CHECK((tv.in_channels == 3 && tv.input_size == 224 && tv.num_classes == 1000));
    CHECK(tv.features == models::vgg_features(16));
    const models::VggConfig small = models::model_config("vgg16-bn-small");
    CHECK(small.avgpool == 0);
    CHECK(small.hidden == std::vector<int64_t>{512, 512});
    CHECK((small.in_channels == 1 && small.input_size == 28 && small.num_classes == 10));
    const models::VggConfig mini = models::model_config("vgg-mini", {0, 0, 4});
    CHECK((mini.in_channels == 1 && mini.input_size == 28 && mini.num_classes == 4));
    CHECK_THROWS_WITH_AS(models::make_model("vgg-mini-small"), doctest::Contains("unknown model"), Error);
    // torchvision's module indices: conv, bn, relu ... pool at features.6; avgpool; classifier.0/.3/.6.
    models::VggConfig c = models::model_config("vgg11-bn", {3, 40, 6});
    c.features = {4, 0, 8, 8, 0, 8, 0, 8, 0, 8, 0};
    c.hidden = {12, 10};
    auto m = std::make_shared<models::Vgg>(c);
    std::vector<std::string> paths;
    for (auto& [path, layer] : m->named_layers())
        if (layer->children().empty()) paths.push_back(path + ":" + layer->type());
    CHECK(paths == std::vector<std::string>{
                       "features.0:Conv2d", "features.1:BatchNorm2d", "features.2:ReLU", "features.3:MaxPool2d",
                       "features.4:Conv2d", "features.5:BatchNorm2d", "features.6:ReLU", "features.7:Conv2d",
                       "features.8:BatchNorm2d", "features.9:ReLU", "features.10:MaxPool2d", "features.11:Conv2d",
                       "features.12:BatchNorm2d", "features.13:ReLU", "features.14:MaxPool2d", "features.15:Conv2d",
                       "features.16:BatchNorm2d", "features.17:ReLU", "features.18:MaxPool2d", "features.19:Conv2d",
                       "features.20:BatchNorm2d", "features.21:ReLU", "features.22:MaxPool2d",
                       "avgpool:AdaptiveAvgPool2d", "classifier.0:Linear", "classifier.1:ReLU",
                       "classifier.2:Dropout", "classifier.3:Linear", "classifier.4:ReLU", "classifier.5:Dropout",
                       "classifier.6:Linear"});
    for (auto& [n, t] : m->state())
        if (n == "classifier.0.weight") CHECK(t.shape() == Shape{12, 8 * 7 * 7});
    // Any input with side >= 2^pools (here 32), square or not.
    m->eval();
    autograd::NoGradGuard ng;
    CHECK((*m)(rand_tensor(Shape{1, 3, 32, 45}, 1)).shape() == Shape{1, 6});
    CHECK((*m)(rand_tensor(Shape{1, 3, 100, 64}, 2)).shape() == Shape{1, 6});
    CHECK_THROWS_WITH_AS((*m)(rand_tensor(Shape{1, 3, 31, 40}, 3)), doctest::Contains("H, W >= 32"), Error);
    CHECK_THROWS_WITH_AS(models::make_model("vgg11", {3, 16, 10}), doctest::Contains("below 32"), Error);
}

TEST_CASE("infer_vgg_config: a plain state dict's configuration from names and shapes") {
    TempDir dir("infer");
    struct Case {
        std::string model;
        models::ModelOptions options;
        std::vector<int64_t> features;
        std::vector<int64_t> hidden;
        std::string expect_name;
    };
    const std::vector<Case> cases = {
        {"vgg13-bn", {2, 64, 5}, {4, 4, 0, 6, 6, 0, 8, 8, 0, 8, 8, 0, 8, 8, 0}, {10, 9}, "vgg-custom"},
        {"vgg11", {1, 32, 3}, {4, 0, 0, 6, 0, 0, 8, 0}, {7}, "vgg-custom"},  // consecutive pools, one hidden layer
        {"vgg-mini", {1, 12, 4}, {}, {}, "vgg-mini"},                        // small layout: 64*3*3 inputs
        {"vgg11-bn-small", {3, 32, 10}, {}, {}, "vgg11-bn-small"},
    };
    for (const Case& k : cases) {
        CAPTURE(k.model);
        models::VggConfig c = models::model_config(k.model, k.options);
        if (!k.features.empty()) c.features = k.features;
        if (!k.hidden.empty()) c.hidden = k.hidden;
        Generator g(5);
        models::Vgg m(c, g);
        auto state = m.state();
        if (c.batch_norm) state.emplace_back("features.1.num_batches_tracked", from_vector(std::vector<int32_t>{7}, Shape{}));
        const std::string path = dir.path(k.model + ".safetensors");
        io::save_safetensors(path, state);  // no metadata
        models::Checkpoint ck = models::load_checkpoint(path);
        const models::VggConfig& r = ck.model->config();
        CHECK(r.name == k.expect_name);
        CHECK(r.features == c.features);
        CHECK(r.batch_norm == c.batch_norm);
        CHECK(r.hidden == c.hidden);
        CHECK(r.avgpool == c.avgpool);
        CHECK(r.in_channels == c.in_channels);
        CHECK(r.num_classes == c.num_classes);
        if (c.avgpool == 0) CHECK(r.input_size == c.input_size);
        else CHECK(r.input_size == 224);
        CHECK(models::load_checkpoint(path, "", &k.options).model->config().input_size == c.input_size);
    }
}

TEST_CASE("infer_vgg_config: a state dict that fits no VGG gets one error with every problem") {
    TempDir dir("infer-bad");
    models::VggConfig c = models::model_config("vgg11-bn", {3, 64, 5});
    c.features = {4, 0, 6, 0, 8, 8, 0, 8, 0, 8, 0};
    c.hidden = {10, 9};
    Generator g(6);
    models::Vgg m(c, g);
    models::NamedTensors bad;
    for (auto& [n, t] : m.state()) {
        if (n == "features.5.running_var") continue;                                  // BN incomplete
        if (n == "classifier.3.weight") bad.emplace_back("classifier.4.weight", t);  // moved Linear
        else if (n == "classifier.3.bias") bad.emplace_back("classifier.4.bias", t);
        else if (n == "features.8.weight") bad.emplace_back(n, ones(Shape{8, 5, 3, 3}));  // wrong in-channels
        else bad.emplace_back(n, t);
    }
    bad.emplace_back("fc.weight", ones(Shape{2, 2}));
    const std::string path = dir.path("bad.safetensors");
    io::save_safetensors(path, bad);
    try {
        models::load_checkpoint(path);
        FAIL("the state dict must not fit");
    } catch (const Error& e) {
        const std::string msg = e.what();
        CHECK(msg.find("does not fit any VGG (4 problems)") != std::string::npos);
        CHECK(msg.find("unexpected tensor 'fc.weight'") != std::string::npos);
        CHECK(msg.find("features.5 (") != std::string::npos);
        CHECK(msg.find("should be a BatchNorm2d of 6 channels") != std::string::npos);
        CHECK(msg.find("features.8.weight [8, 5, 3, 3] takes 5 channels, the layer before gives 6") != std::string::npos);
        CHECK(msg.find("classifier.4: torchvision puts the Linear layers at classifier.0, .3, .6") != std::string::npos);
        CHECK(msg.find("classifier.4.weight [9, 10] takes 10 inputs") == std::string::npos);
    }
    // Metadata-free file named as another model: load_state lists what does not fit.
    io::save_safetensors(dir.path("ok.safetensors"), m.state());
    CHECK_THROWS_WITH_AS(models::load_checkpoint(dir.path("ok.safetensors"), "vgg-mini-bn"),
                         doctest::Contains("does not fit the model"), Error);
}

TEST_CASE("checkpoints written before the torchvision layouts load as the small layout they were") {
    TempDir dir("legacy");
    Generator g(8);
    auto model = models::make_model("vgg11-bn-small", {3, 32, 10}, g);
    auto meta = model->config().to_metadata();
    meta.erase("vgg.avgpool");
    meta["model"] = "vgg11-bn";  // the old name of this configuration
    meta["format"] = "glassbox-checkpoint";
    io::save_safetensors(dir.path("old.safetensors"), model->state(), meta);
    models::Checkpoint ck = models::load_checkpoint(dir.path("old.safetensors"));
    CHECK(ck.model->config().name == "vgg11-bn-small");
    CHECK(ck.model->config().avgpool == 0);
    CHECK(ck.model->config().hidden == std::vector<int64_t>{512, 512});
    const Tensor x = rand_tensor(Shape{2, 3, 32, 32}, 4);
    autograd::NoGradGuard ng;
    model->eval();
    CHECK(((*ck.model)(x).to_vector<float>() == (*model)(x).to_vector<float>()));
}
