// explain/: LRP composites through one Trace on the reference models, against
// Zennit 0.5.1 (tests/data/vgg_mini*.lrp.safetensors: relevance at the input and
// at two layer outputs, per-sample tolerances from the files); BatchNorm folding;
// one forward serving many explanations.
#include "autograd/grad_mode.h"
#include "explain/trace.h"
#include "models/checkpoint.h"
#include "reference.h"
#include "temp_dir.h"

using namespace gb;
using namespace gb::testing;
using explain::Composite;
using explain::Target;

namespace {
void check_composites(const std::string& model_name, const std::string& prefix, bool fold,
                      const std::vector<std::string>& presets, const std::vector<std::string>& layers) {
    const io::SafeTensors data = io::load_safetensors(data_file(prefix + ".data.safetensors"));
    const io::SafeTensors ref = io::load_safetensors(data_file(prefix + ".lrp.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file(prefix + ".model.safetensors"), model_name);
    explain::Trace trace(*ck.model, data.at("input"), {.fold_batchnorm = fold});
    const Tensor seed = trace.seed(targets_of(data.at("target")));
    for (const std::string& preset : presets) {
        CAPTURE(preset);
        const std::string key = "lrp." + std::string(preset == "epsilon-plus-flat"           ? "epsilon_plus_flat"
                                                     : preset == "epsilon-gamma-box"         ? "epsilon_gamma_box"
                                                     : preset == "epsilon-alpha2-beta1"      ? "epsilon_alpha2_beta1"
                                                     : preset == "epsilon-alpha2-beta1-flat" ? "epsilon_alpha2_beta1_flat"
                                                     : preset == "epsilon-plus"              ? "epsilon_plus"
                                                                                             : "epsilon");
        const auto r = trace.relevance(Composite::preset(preset), seed, layers);
        check_reference(r[0], ref.at(key), reference_tol(ref, key), key);
        for (size_t i = 0; i < layers.size(); ++i) {
            const std::string lk = key + ".layer_out." + layers[i];
            check_reference(r[i + 1], ref.at(lk), reference_tol(ref, lk), lk);
        }
    }
}
}  // namespace

TEST_CASE("vgg-mini: every composite matches Zennit at the input and inside") {
    check_composites("vgg-mini", "vgg_mini", false,
                     {"epsilon-plus-flat", "epsilon-gamma-box", "epsilon-alpha2-beta1", "epsilon-alpha2-beta1-flat",
                      "epsilon-plus", "epsilon"},
                     {"features.4", "features.9"});
}

TEST_CASE("vgg-mini: all-epsilon from one-hot(target) * logit") {
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini.data.safetensors"));
    const io::SafeTensors ref = io::load_safetensors(data_file("vgg_mini.lrp.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini.model.safetensors"), "vgg-mini");
    explain::Trace trace(*ck.model, data.at("input"));
    const auto r = trace.relevance(Composite::preset("epsilon"), trace.seed(targets_of(data.at("target")), true),
                                   {"features.4", "features.9"});
    const std::string key = "lrp.epsilon.onehot_logit";
    check_reference(r[0], ref.at(key), reference_tol(ref, key), key);
    check_reference(r[1], ref.at(key + ".layer_out.features.4"), reference_tol(ref, key + ".layer_out.features.4"), "f4");
    check_reference(r[2], ref.at(key + ".layer_out.features.9"), reference_tol(ref, key + ".layer_out.features.9"), "f9");
}

TEST_CASE("vgg-mini-bn: composites after folding BatchNorm match Zennit's SequentialMergeBatchNorm") {
    check_composites("vgg-mini-bn", "vgg_mini_bn", true, {"epsilon-plus-flat", "epsilon-gamma-box"},
                     {"features.6", "features.13"});
}

TEST_CASE("BatchNorm folding leaves the outputs unchanged to 1e-5 and is undone afterwards") {
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini_bn.data.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini_bn.model.safetensors"), "vgg-mini-bn");
    autograd::NoGradGuard ng;
    const Tensor before = (*ck.model)(data.at("input"));
    const auto w0 = ck.model->state()[0].second.to_vector<float>();
    {
        explain::BatchNormFold fold(*ck.model);
        CHECK(fold.folded() == 4);
        check_reference((*ck.model)(data.at("input")), before, 1e-5, "folded logits");
        CHECK(ck.model->state()[0].second.to_vector<float>() != w0);
    }
    CHECK(ck.model->state()[0].second.to_vector<float>() == w0);
    check_reference((*ck.model)(data.at("input")), before, 0, "restored logits");
}

TEST_CASE("one forward pass serves many explanations and targets") {
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini.data.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini.model.safetensors"), "vgg-mini");
    int64_t model_calls = 0;
    ck.model->on_forward([&](layers::Layer&, const Tensor&, const Tensor&) { ++model_calls; });
    const int64_t before = explain::Trace::forward_passes();
    explain::Trace trace(*ck.model, data.at("input"));
    const Tensor a = trace.relevance(Composite::preset("epsilon-plus-flat"), trace.seed({Target::predicted()}))[0];
    const Tensor b = trace.relevance(Composite::preset("epsilon-gamma-box"), trace.seed({Target::of(3)}))[0];
    const Tensor g = trace.gradient(trace.seed({Target::contrast(2, 3)}), {"features.7"})[1];
    const Tensor a2 = trace.relevance(Composite::preset("epsilon-plus-flat"), trace.seed({Target::predicted()}))[0];
    CHECK(model_calls == 1);
    CHECK(explain::Trace::forward_passes() == before + 1);
    CHECK(a.to_vector<float>() == a2.to_vector<float>());
    CHECK(g.shape() == Shape{4, 64, 14, 14});
    // Contrast = difference of the two one-hot gradients (linear in the seed).
    const auto g2 = trace.gradient(trace.seed({Target::of(2)}), {"features.7"})[1].to_vector<float>();
    const auto g3 = trace.gradient(trace.seed({Target::of(3)}), {"features.7"})[1].to_vector<float>();
    const auto gv = g.to_vector<float>();
    float err = 0;
    for (size_t i = 0; i < gv.size(); ++i) err = std::max(err, std::fabs(gv[i] - (g2[i] - g3[i])));
    CHECK(err < 1e-5f);
    // The pruned pass to one layer gives the same gradient there as the full pass.
    CHECK(trace.layer_gradients(trace.seed({Target::contrast(2, 3)}), {"features.7"})[0].to_vector<float>() == gv);
    CHECK_THROWS_WITH_AS(trace.layer_output("features.99"), doctest::Contains("no layer 'features.99'"), Error);
    CHECK_THROWS_WITH_AS(trace.seed({Target::of(10)}), doctest::Contains("outside [0, 10)"), Error);
    CHECK_THROWS_WITH_AS(Composite::preset("epsilon-minus"), doctest::Contains("unknown composite"), Error);
    CHECK(Target::parse("3-5").str() == "3-5");
    CHECK_THROWS_WITH_AS(Target::parse("cat"), doctest::Contains("bad target 'cat'"), Error);
}

TEST_CASE("targets by class name: exact names, contrasts of names with '-', close names in errors") {
    const std::vector<std::string> fashion = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    auto same = [](const Target& a, const Target& b) { return a.kind == b.kind && a.cls == b.cls && a.other == b.other; };
    CHECK(same(Target::parse("Sandal", fashion), Target::of(5)));
    CHECK(same(Target::parse("Ankle boot", fashion), Target::of(9)));
    CHECK(same(Target::parse("T-shirt/top", fashion), Target::of(0)));
    CHECK(same(Target::parse("7", fashion), Target::of(7)));
    CHECK(same(Target::parse("pred", fashion), Target::predicted()));
    CHECK(same(Target::parse("T-shirt/top-Trouser", fashion), Target::contrast(0, 1)));
    CHECK(same(Target::parse("Sneaker-T-shirt/top", fashion), Target::contrast(7, 0)));
    CHECK(same(Target::parse("Sandal-3", fashion), Target::contrast(5, 3)));
    CHECK(Target::parse("T-shirt/top-Trouser", fashion).describe(fashion) == "T-shirt/top (0) versus Trouser (1)");
    CHECK(Target::parse("Sandal", fashion).describe(fashion) == "Sandal (5)");
    CHECK(Target::of(3).describe({}) == "3");
    CHECK_THROWS_WITH_AS(Target::parse("Sandel", fashion), doctest::Contains("close names: 'Sandal'"), Error);
    CHECK_THROWS_WITH_AS(Target::parse("shirt", fashion), doctest::Contains("'T-shirt/top', 'Shirt'"), Error);
    CHECK_THROWS_WITH_AS(Target::parse("Sandal-Snekaer", fashion), doctest::Contains("close names: 'Sneaker'"), Error);
    CHECK_THROWS_WITH_AS(Target::parse("zebra", fashion), doctest::Contains("the classes are 'T-shirt/top', 'Trouser'"), Error);
    // A name that is also a split of two other names: ambiguous (a name matches first, then splits).
    const std::vector<std::string> dashy = {"a", "b-c", "a-b", "c"};
    CHECK(same(Target::parse("a-b", dashy), Target::of(2)));
    CHECK_THROWS_WITH_AS(Target::parse("a-b-c", dashy), doctest::Contains("ambiguous target 'a-b-c'"), Error);
}

TEST_CASE("conservation: LRP-0 with zero biases gives sum of input relevance = target logit") {
    // Closed form: with no biases and ReLU/max-pool passing relevance, every LRP-0 layer
    // conserves the total, so sum_i R_i = logit[target] (1e-4 relative, float32 sums).
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini.data.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini.model.safetensors"), "vgg-mini");
    for (auto& [name, t] : ck.model->named_parameters())
        if (name.find("bias") != std::string::npos) fill(t, 0.f);
    explain::Trace trace(*ck.model, data.at("input"));
    const std::vector<Target> tg{Target::predicted()};
    const Tensor r = trace.relevance(Composite::preset("lrp0"), trace.seed(tg, true))[0];
    const auto rv = r.to_vector<float>(), lv = trace.logits().to_vector<float>();
    const auto cls = explain::resolve_classes(tg, trace.logits());
    for (int64_t b = 0; b < 4; ++b) {
        double s = 0;
        for (int64_t i = 0; i < 784; ++i) s += rv[static_cast<size_t>(b * 784 + i)];
        CHECK(s == doctest::Approx(lv[static_cast<size_t>(b * 10 + cls[static_cast<size_t>(b)])]).epsilon(1e-4));
    }
}
