// explain/: LRP composites through one Trace on the reference models, against
// Zennit 0.5.1 (tests/data/vgg_mini*.lrp.safetensors: relevance at the input and
// at two layer outputs, per-sample tolerances from the files); the BatchNorm
// canonizer as a view (one trace serves canonized LRP and the model's own
// gradients and CAMs; traces never write the model; saved tensors are guarded);
// one forward serving many explanations.
#include "autograd/engine.h"
#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "explain/cam.h"
#include "explain/methods.h"
#include "explain/trace.h"
#include "train/optimizer.h"
#include "models/checkpoint.h"
#include "reference.h"
#include "temp_dir.h"

using namespace gb;
using namespace gb::testing;
using explain::Composite;
using explain::Target;

namespace {
// The reference inputs are pixels in [0, 1] (not normalised): ZBox bounds 0 and 1.
const explain::PresetOptions kUnit = explain::PresetOptions::with_range(0.f, 1.f);

// Every parameter and buffer of a model, copied.
std::vector<std::vector<float>> snapshot(layers::Layer& model) {
    std::vector<std::vector<float>> out;
    for (const auto& [name, t] : model.state()) out.push_back(t.to_vector<float>());
    return out;
}

void check_composites(const std::string& model_name, const std::string& prefix,
                      const std::vector<std::string>& presets, const std::vector<std::string>& layers) {
    const io::SafeTensors data = io::load_safetensors(data_file(prefix + ".data.safetensors"));
    const io::SafeTensors ref = io::load_safetensors(data_file(prefix + ".lrp.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file(prefix + ".model.safetensors"), model_name);
    const auto before = snapshot(*ck.model);
    explain::Trace trace(*ck.model, data.at("input"));
    const Tensor seed = trace.seed(targets_of(data.at("target")));
    for (const std::string& preset : presets) {
        CAPTURE(preset);
        const std::string key = "lrp." + std::string(preset == "epsilon-plus-flat"           ? "epsilon_plus_flat"
                                                     : preset == "epsilon-gamma-box"         ? "epsilon_gamma_box"
                                                     : preset == "epsilon-alpha2-beta1"      ? "epsilon_alpha2_beta1"
                                                     : preset == "epsilon-alpha2-beta1-flat" ? "epsilon_alpha2_beta1_flat"
                                                     : preset == "epsilon-plus"              ? "epsilon_plus"
                                                                                             : "epsilon");
        const auto r = trace.relevance(Composite::preset(preset, kUnit), seed, layers);
        check_reference(r[0], ref.at(key), reference_tol(ref, key), key);
        for (size_t i = 0; i < layers.size(); ++i) {
            const std::string lk = key + ".layer_out." + layers[i];
            check_reference(r[i + 1], ref.at(lk), reference_tol(ref, lk), lk);
        }
    }
    CHECK(snapshot(*ck.model) == before);  // explaining never writes the model
}
}  // namespace

TEST_CASE("vgg-mini: every composite matches Zennit at the input and inside") {
    check_composites("vgg-mini", "vgg_mini",
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

TEST_CASE("vgg-mini-bn: composites with the BatchNorm canonizer (a view) match Zennit's SequentialMergeBatchNorm") {
    check_composites("vgg-mini-bn", "vgg_mini_bn", {"epsilon-plus-flat", "epsilon-gamma-box"},
                     {"features.6", "features.13"});
}

TEST_CASE("vgg-mini-bn: one trace gives canonized LRP and the model's own gradient and Grad-CAM") {
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini_bn.data.safetensors"));
    const io::SafeTensors lrp = io::load_safetensors(data_file("vgg_mini_bn.lrp.safetensors"));
    const io::SafeTensors grad = io::load_safetensors(data_file("vgg_mini_bn.gradient.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini_bn.model.safetensors"), "vgg-mini-bn");
    const auto before = snapshot(*ck.model);
    const int64_t forwards = explain::Trace::forward_passes();
    explain::Trace trace(*ck.model, data.at("input"));
    const Tensor seed = trace.seed(targets_of(data.at("target")));
    // Interleaved, in both orders: gradient (Captum Saliency(abs=False)), LRP (Zennit, canonized),
    // Grad-CAM at the pre-BatchNorm conv (Captum LayerGradCam), and the same again.
    for (int round = 0; round < 2; ++round) {
        CAPTURE(round);
        check_reference(trace.gradient(seed)[0], grad.at("grad"), reference_tol(grad, "grad"), "gradient");
        check_reference(trace.relevance(Composite::preset("epsilon-plus-flat", kUnit), seed)[0],
                        lrp.at("lrp.epsilon_plus_flat"), reference_tol(lrp, "lrp.epsilon_plus_flat"), "lrp");
        check_reference(explain::cam(trace, explain::CamMethod::GradCam, "features.10", seed).raw,
                        grad.at("gradcam.features.10"), reference_tol(grad, "gradcam.features.10"), "gradcam");
    }
    CHECK(explain::Trace::forward_passes() == forwards + 1);
    CHECK(snapshot(*ck.model) == before);
    // The string-dispatched entry point canonizes by default and says so.
    const explain::Attribution a = explain::attribute(trace, explain::parse_method("lrp:epsilon-plus-flat"),
                                                      targets_of(data.at("target")), kUnit);
    check_reference(a.map, lrp.at("lrp.epsilon_plus_flat"), reference_tol(lrp, "lrp.epsilon_plus_flat"), "attribute");
    CHECK(a.note == "canonizer batchnorm: 4 BatchNorm2d merged into the Conv2d/Linear before them");
    // Without the canonizer the map is another one (BatchNorm passes relevance): off by far more than the tolerance.
    explain::PresetOptions none = kUnit;
    none.canonizer = explain::Canonizer::None;
    const explain::Attribution u =
        explain::attribute(trace, explain::parse_method("lrp:epsilon-plus-flat"), targets_of(data.at("target")), none);
    CHECK(u.note == "canonizer none: 4 BatchNorm2d layers not merged; relevance passes through them unchanged");
    CHECK(max_relative_error(u.map, lrp.at("lrp.epsilon_plus_flat")) > 0.05);
}

TEST_CASE("two live traces of one BatchNorm model, calls interleaved, are bit-identical to each alone") {
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini_bn.data.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini_bn.model.safetensors"), "vgg-mini-bn");
    const Tensor x = data.at("input");
    const Tensor x2 = x.narrow(2, 2).clone();
    const auto explain_all = [&](const explain::Trace& t, int what) {
        const Tensor seed = t.seed({Target::predicted()});
        switch (what) {
            case 0: return t.relevance(Composite::preset("epsilon-gamma-box", kUnit), seed)[0].to_vector<float>();
            case 1: return t.gradient(seed)[0].to_vector<float>();
            case 2: {
                explain::PresetOptions none = kUnit;
                none.canonizer = explain::Canonizer::None;
                return t.relevance(Composite::preset("epsilon-plus", none), seed)[0].to_vector<float>();
            }
            default: return explain::cam(t, explain::CamMethod::GradCam, "features.10", seed).raw.to_vector<float>();
        }
    };
    std::vector<std::vector<float>> alone_a, alone_b;
    {
        explain::Trace a(*ck.model, x);
        for (int w = 0; w < 4; ++w) alone_a.push_back(explain_all(a, w));
    }
    {
        explain::Trace b(*ck.model, x2);
        for (int w = 0; w < 4; ++w) alone_b.push_back(explain_all(b, w));
    }
    explain::Trace a(*ck.model, x), b(*ck.model, x2);
    for (int w : {3, 0, 2, 1})
        for (int which : {1, 0}) {
            CAPTURE(w);
            CAPTURE(which);
            CHECK(explain_all(which ? b : a, w) == (which ? alone_b : alone_a)[static_cast<size_t>(w)]);
        }
}

TEST_CASE("merged BatchNorm parameters are shared by traces of an unchanged model and follow every change") {
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini_bn.data.safetensors"));
    models::Checkpoint a = models::load_checkpoint(data_file("vgg_mini_bn.model.safetensors"), "vgg-mini-bn");
    models::Checkpoint b = models::load_checkpoint(data_file("vgg_mini_bn.model.safetensors"), "vgg-mini-bn");
    const Tensor x = data.at("input");
    const auto lrp = [&](layers::Layer& model) {
        explain::Trace t(model, x);
        return t.relevance(Composite::preset("epsilon-gamma-box", kUnit), t.seed({Target::of(3)}))[0].to_vector<float>();
    };
    const auto first = lrp(*a.model);
    CHECK(lrp(*a.model) == first);  // a second trace: the cached merge, the same map
    CHECK(lrp(*b.model) == first);  // another model with the same values: its own merge, the same map
    // The same in-place change to both models (a BatchNorm weight and a running variance):
    // model a's cached merge is stale and must not be used.
    for (auto* m : {a.model.get(), b.model.get()})
        for (auto& [name, t] : m->state())
            if (name == "features.4.weight" || name == "features.8.running_var") fill(t, 1.3f);
    const auto changed = lrp(*a.model);
    CHECK(changed != first);
    CHECK(changed == lrp(*b.model));
}

TEST_CASE("a training step after explanations is the same as without them") {
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini_bn.data.safetensors"));
    const Tensor x = data.at("input");
    const Tensor labels = from_vector(std::vector<int32_t>{2, 3, 0, 8}, Shape{4});
    auto step = [&](bool explain_first) {
        models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini_bn.model.safetensors"), "vgg-mini-bn");
        std::unique_ptr<explain::Trace> alive;
        if (explain_first) {
            alive = std::make_unique<explain::Trace>(*ck.model, x);
            alive->relevance(Composite::preset("epsilon-gamma-box", kUnit), alive->seed({Target::predicted()}));
            explain::cam(*alive, explain::CamMethod::GradCam, "features.10", alive->seed({Target::predicted()}));
        }
        ck.model->train();
        ck.model->zero_grad();
        default_generator().set_state(7, 0);  // the same dropout masks in both runs
        autograd::backward(cross_entropy((*ck.model)(x), labels));
        std::vector<std::vector<float>> grads;
        for (const auto& p : ck.model->parameters()) grads.push_back(p.grad().to_vector<float>());
        return std::make_pair(grads, snapshot(*ck.model));  // running statistics were updated too
    };
    CHECK(step(true) == step(false));
}

TEST_CASE("a pass that finds a saved tensor written in place since the forward fails, naming node and tensor") {
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini_bn.data.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini_bn.model.safetensors"), "vgg-mini-bn");
    explain::Trace trace(*ck.model, data.at("input"));
    const Tensor seed = trace.seed({Target::predicted()});
    const auto g0 = trace.gradient(seed)[0].to_vector<float>();
    // An optimizer step writes the weights in place (and bumps their version).
    Tensor w = ck.model->named_parameters()[0].second;  // features.0.weight
    fill(w, 0.5f);
    CHECK_THROWS_WITH_AS(trace.gradient(seed), doctest::Contains("Conv2dBackward of Conv2d(1, 32"), Error);
    CHECK_THROWS_WITH_AS(trace.gradient(seed), doctest::Contains("the weight it saved in the forward pass was modified in place"), Error);
    CHECK_THROWS_WITH_AS(trace.relevance(Composite::preset("epsilon-plus-flat", kUnit), seed),
                         doctest::Contains("modified in place"), Error);
    // A pass that stops above the changed layer does not read it.
    CHECK(trace.layer_gradients(seed, {"features.10"})[0].defined());
    // A BatchNorm statistic changed: the merge (and the BatchNorm's own backward) refuses it.
    explain::Trace t2(*ck.model, data.at("input"));
    Tensor rv;
    for (auto& [name, t] : ck.model->named_parameters())
        if (name == "features.4.weight") rv = t;
    fill(rv, 2.f);
    CHECK_THROWS_WITH_AS(t2.relevance(Composite::preset("epsilon-plus-flat", kUnit), t2.seed({Target::predicted()})),
                         doctest::Contains("BatchNorm2dBackward of BatchNorm2d(32"), Error);
    // Plain autograd: the input of a multiplication written between forward and backward.
    Tensor a = uniform(Shape{3}).set_requires_grad(), b = uniform(Shape{3});
    Tensor y = sum(mul(a, b));
    fill(b, 1.f);
    CHECK_THROWS_WITH_AS(autograd::backward(y), doctest::Contains("MulBackward: the second operand it saved"), Error);
}

TEST_CASE("epsilon-gamma-box never assumes the input range") {
    CHECK_THROWS_WITH_AS(Composite::preset("epsilon-gamma-box"), doctest::Contains("needs the input's range"), Error);
    const auto from_norm = explain::PresetOptions::for_normalization({0.5f}, {0.25f});
    CHECK(*from_norm.low == -2.f);
    CHECK(*from_norm.high == 2.f);
    const auto rgb = explain::PresetOptions::for_normalization({0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f});
    CHECK(rgb.low_bound.to_vector<float>()[2] == doctest::Approx(-0.406f / 0.225f));
    CHECK(rgb.high_bound.to_vector<float>()[1] == doctest::Approx((1.f - 0.456f) / 0.224f));
    CHECK_NOTHROW(Composite::preset("epsilon-gamma-box", rgb));
    CHECK_THROWS_WITH_AS(explain::PresetOptions::for_normalization({0.5f}, {0.f}), doctest::Contains("not positive"), Error);
    CHECK_THROWS_WITH_AS(explain::parse_canonizer("zennit"), doctest::Contains("known: batchnorm, none"), Error);
}

TEST_CASE("one forward pass serves many explanations and targets") {
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini.data.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini.model.safetensors"), "vgg-mini");
    int64_t model_calls = 0;
    ck.model->on_forward([&](layers::Layer&, const Tensor&, const Tensor&) { ++model_calls; });
    const int64_t before = explain::Trace::forward_passes();
    explain::Trace trace(*ck.model, data.at("input"));
    const Tensor a = trace.relevance(Composite::preset("epsilon-plus-flat"), trace.seed({Target::predicted()}))[0];
    const Tensor b = trace.relevance(Composite::preset("epsilon-gamma-box", kUnit), trace.seed({Target::of(3)}))[0];
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

TEST_CASE("a second LRP pass of one trace runs no layer forward, and gives what a fresh trace gives") {
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini.data.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini.model.safetensors"), "vgg-mini");
    // Pixels in [0, 1]: z+ and Gamma see inputs without negative elements, single terms on the saved input,
    // whose forwards (W+ x + b+) the nodes remember; epsilon divides by the recorded outputs.
    for (const std::string preset : {"epsilon-plus", "epsilon-gamma-box"}) {
        CAPTURE(preset);
        const Composite c = Composite::preset(preset, kUnit);
        explain::Trace trace(*ck.model, data.at("input"));
        const int64_t f0 = layers::rule_forwards_run();
        trace.relevance(c, trace.seed({Target::of(1)}));
        const int64_t f1 = layers::rule_forwards_run();
        const Tensor again = trace.relevance(c, trace.seed({Target::of(2)}))[0];
        CHECK(f1 > f0);
        // epsilon-gamma-box's first layer (ZBox: three terms, two on inputs made from the bounds) runs its three.
        CHECK(layers::rule_forwards_run() - f1 == (preset == "epsilon-plus" ? 0 : 3));
        explain::Trace fresh(*ck.model, data.at("input"));
        CHECK(again.to_vector<float>() == fresh.relevance(c, fresh.seed({Target::of(2)}))[0].to_vector<float>());
    }
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
