// Training and explaining on the CUDA device, against the same on the CPU:
// two SGD steps of vgg-mini by hand, run_training (loader, augmentation, dropout, batch
// norm, SGD with momentum, cosine schedule, checkpoint) for one short epoch,
// then explain::Trace /
// attribute for saliency, LRP epsilon-plus-flat (batch norm canonized) and
// Grad-CAM on the trained model. test_cuda_emulated_train_explain runs it on
// the emulated device in every ctest run, so the CUDA backend's code path
// through train/ and explain/ is exercised without a GPU; test_cuda_device
// runs it on a real GPU. SmoothGrad, Integrated Gradients, activation
// maximisation, counterfactuals and interventions (with a Trace of the
// intervened model) run on a small vgg-mini on each device; a soft decision
// tree (models/soft_tree) takes Adam steps on each.
//
// Tolerances (reference: the CPU run). The two backends sum in different
// orders (the CPU's blocked GEMM, cuBLAS or its emulation accumulating in
// double), so results agree to float rounding amplified by a few steps:
//   training losses, parameters   rtol 1e-3, atol 1e-5
//   explanation maps              |cuda - cpu| <= 1e-3 * max|cpu| element-wise
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/factory.h"
#include "explain/gradient_methods.h"
#include "explain/interventions.h"
#include "explain/methods.h"
#include "explain/metrics.h"
#include "explain/model_methods.h"
#include "layers/layers.h"
#include "idx_writer.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "models/registry.h"
#include "models/soft_tree.h"
#include "temp_dir.h"
#include "train/optimizer.h"
#include "train/trainer.h"
#include "train_config.h"

using namespace gb;
using namespace gb::testing;

namespace {

void check_close(const std::string& what, const std::vector<float>& got, const std::vector<float>& want,
                 double rtol, double atol) {
    REQUIRE(got.size() == want.size());
    size_t bad = 0, first = 0;
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        const double d = std::fabs(static_cast<double>(got[i]) - want[i]);
        worst = std::max(worst, d / (atol + rtol * std::fabs(want[i])));
        if (!(d <= atol + rtol * std::fabs(want[i]))) {
            if (!bad) first = i;
            ++bad;
        }
    }
    INFO(what << ": " << bad << " of " << got.size() << " outside rtol " << rtol << " atol " << atol
              << " (worst at " << worst << " of the tolerance); first at " << first << ": got "
              << (bad ? got[first] : 0.f) << " want " << (bad ? want[first] : 0.f));
    CHECK(bad == 0);
}

float max_abs(const std::vector<float>& v) {
    float m = 0;
    for (float x : v) m = std::max(m, std::fabs(x));
    return m;
}

train::TrainConfig run_on(const std::string& data_dir, const std::string& out, Device device) {
    train::TrainConfig c = small_train_config(data_dir, out, 4, 3);
    c.model = "vgg-mini-bn";
    c.epochs = 1;
    c.device = device;
    return c;
}

}  // namespace

TEST_CASE("two vgg-mini training steps on cuda:0 match the CPU") {
    // vgg-mini-bn trains through run_training below; this is the model without batch norm.
    const Device cuda = Device::cuda(0);
    for (const char* name : {"vgg-mini"}) {
        CAPTURE(name);
        Generator g(3);
        auto cpu_model = models::make_model(name, {1, 8, 10}, g);
        Generator g2(3);
        auto dev_model = models::make_model(name, {1, 8, 10}, g2);
        dev_model->to(cuda);
        const Tensor x = uniform(Shape{2, 1, 8, 8}, 0.f, 1.f, g);
        const Tensor labels = from_vector(std::vector<int32_t>{3, 7}, Shape{2});
        kernels::SgdParams p;
        p.lr = 0.1f;
        p.momentum = 0.9f;
        train::Sgd cpu_opt(cpu_model->named_parameters(), p), dev_opt(dev_model->named_parameters(), p);
        cpu_model->eval();  // no dropout: the two runs draw the same nothing
        dev_model->eval();
        for (int step = 0; step < 2; ++step) {
            const Tensor cpu_loss = cross_entropy((*cpu_model)(x), labels);
            const Tensor dev_loss = cross_entropy((*dev_model)(x.to(cuda)), labels.to(cuda));
            CHECK(dev_loss.item() == doctest::Approx(cpu_loss.item()).epsilon(1e-3));
            cpu_opt.zero_grad();
            dev_opt.zero_grad();
            autograd::backward(cpu_loss);
            autograd::backward(dev_loss);
            cpu_opt.step();
            dev_opt.step();
        }
        const auto cpu_params = cpu_model->named_parameters(), dev_params = dev_model->named_parameters();
        for (size_t i = 0; i < cpu_params.size(); ++i)
            check_close(cpu_params[i].first, dev_params[i].second.to_vector<float>(),
                        cpu_params[i].second.to_vector<float>(), 1e-3, 1e-5);
    }
}

TEST_CASE("cuda:0 trains a vgg-mini-bn and explains it as the CPU does") {
    const Device cuda = Device::cuda(0);
    TempDir dir("cuda_train_explain");
    write_fake_mnist(dir.path(), 8, 4, 8, false);  // 2 steps of 4 images, 8x8
    std::ostringstream log;
    const train::TrainResult cpu = train::run_training(run_on(dir.path(), dir.path("cpu"), Device::cpu()), log);
    const train::TrainResult dev = train::run_training(run_on(dir.path(), dir.path("cuda"), cuda), log);
    INFO(log.str());
    REQUIRE(dev.history.size() == cpu.history.size());
    for (size_t e = 0; e < cpu.history.size(); ++e) {
        CHECK(dev.history[e].train_loss == doctest::Approx(cpu.history[e].train_loss).epsilon(1e-3));
        CHECK(dev.history[e].test_loss == doctest::Approx(cpu.history[e].test_loss).epsilon(1e-3));
    }
    const io::SafeTensors want = io::load_safetensors(cpu.model_path), got = io::load_safetensors(dev.model_path);
    REQUIRE(got.tensors.size() == want.tensors.size());
    for (size_t i = 0; i < want.tensors.size(); ++i) {
        REQUIRE(got.tensors[i].first == want.tensors[i].first);
        check_close(want.tensors[i].first, got.tensors[i].second.to_vector<float>(),
                    want.tensors[i].second.to_vector<float>(), 1e-3, 1e-5);
    }

    // Explanations of the CPU-trained model, on each device.
    models::Checkpoint on_cpu = models::load_checkpoint(cpu.model_path);
    models::Checkpoint on_dev = models::load_checkpoint(cpu.model_path);
    on_dev.model->to(cuda);
    Generator g(11);
    const Tensor x = uniform(Shape{1, 1, 8, 8}, 0.f, 1.f, g);
    const explain::Trace cpu_trace(*on_cpu.model, x), dev_trace(*on_dev.model, x.to(cuda));
    CHECK(dev_trace.logits().device() == cuda);
    const std::vector<explain::Target> targets{explain::Target::predicted()};
    for (const char* spec : {"saliency", "lrp:epsilon-plus-flat", "gradcam"}) {
        CAPTURE(spec);
        const explain::MethodSpec m = explain::parse_method(spec);
        const explain::Attribution a =
            explain::attribute(cpu_trace, m, targets, explain::PresetOptions::with_range(0.f, 1.f));
        const explain::Attribution b =
            explain::attribute(dev_trace, m, targets, explain::PresetOptions::with_range(0.f, 1.f));
        CHECK(b.map.shape() == a.map.shape());
        CHECK(b.is_signed == a.is_signed);
        const std::vector<float> want_map = a.map.to_vector<float>();
        REQUIRE(max_abs(want_map) > 0.f);
        check_close(spec, b.map.to_vector<float>(), want_map, 0.0, 1e-3 * max_abs(want_map));
    }
}

TEST_CASE("cuda:0 scores perturbations and draws their maps as the CPU does") {
    // The perturbation family composes its inputs and maps on the input's backend
    // (explain/perturbation.cpp): occlusion, LIME, KernelSHAP, Score-CAM, the metrics'
    // replacement images and curves, max-sensitivity. Same tolerances as above.
    const Device cuda = Device::cuda(0);
    Generator g(21);
    auto net = std::make_shared<layers::Sequential>();
    net->add(std::make_shared<layers::Conv2d>(2, 3, 3, layers::Conv2dOptions{1, 1, 1, true}, g));
    net->add(std::make_shared<layers::ReLU>());
    net->add(std::make_shared<layers::Flatten>());
    net->add(std::make_shared<layers::Linear>(3 * 8 * 8, 4, true, g));
    auto dev_net = std::make_shared<layers::Sequential>();
    Generator g2(21);
    dev_net->add(std::make_shared<layers::Conv2d>(2, 3, 3, layers::Conv2dOptions{1, 1, 1, true}, g2));
    dev_net->add(std::make_shared<layers::ReLU>());
    dev_net->add(std::make_shared<layers::Flatten>());
    dev_net->add(std::make_shared<layers::Linear>(3 * 8 * 8, 4, true, g2));
    dev_net->to(cuda);
    const Tensor x = uniform(Shape{2, 2, 8, 8}, 0.f, 1.f, g);
    const explain::Trace cpu_trace(*net, x), dev_trace(*dev_net, x.to(cuda));
    const std::vector<explain::Target> targets{explain::Target::predicted()};
    for (const char* spec : {"occlusion:window=3,stride=2", "lime:samples=12,segments=4", "kernelshap:samples=12,segments=4",
                             "scorecam"}) {
        CAPTURE(spec);
        const explain::MethodSpec m = explain::parse_method(spec);
        const explain::Attribution a = explain::attribute(cpu_trace, m, targets, explain::PresetOptions::with_range(0.f, 1.f));
        const explain::Attribution b = explain::attribute(dev_trace, m, targets, explain::PresetOptions::with_range(0.f, 1.f));
        CHECK(b.map.device() == cuda);
        const std::vector<float> want_map = a.map.to_vector<float>();
        REQUIRE(max_abs(want_map) > 0.f);
        check_close(spec, b.map.to_vector<float>(), want_map, 0.0, 1e-3 * max_abs(want_map));
    }
    const std::vector<int32_t> classes{1, 3};
    const Tensor map = uniform(Shape{2, 1, 8, 8}, -1.f, 1.f, g);
    for (auto r : {explain::Replacement::Blur, explain::Replacement::Mean, explain::Replacement::Noise}) {
        CAPTURE(explain::replacement_name(r));
        explain::PerturbationOptions o;
        o.replacement = r;
        o.insertion = r == explain::Replacement::Blur;
        o.steps = 5;
        const std::vector<float> want_image = explain::replacement_image(x, o).to_vector<float>();
        check_close("replacement", explain::replacement_image(x.to(cuda), o).to_vector<float>(), want_image, 1e-5, 1e-6);
        const explain::Curves a = explain::perturbation_curves(*net, x, map, classes, o);
        const explain::Curves b = explain::perturbation_curves(*dev_net, x.to(cuda), map.to(cuda), classes, o);
        check_close("curves", std::vector<float>(b.values.begin(), b.values.end()),
                    std::vector<float>(a.values.begin(), a.values.end()), 1e-3, 1e-5);
    }
    const explain::Explainer gxi = [](layers::Layer& model, const Tensor& in, const std::vector<int32_t>& cls) {
        const explain::Trace t(model, in);
        std::vector<explain::Target> tg;
        for (int32_t c : cls) tg.push_back(explain::Target::of(c));
        return explain::attribute(t, explain::parse_method("gradient-x-input"), tg).map;
    };
    explain::SensitivityOptions so;
    so.samples = 3;
    const auto sa = explain::max_sensitivity(*net, x, classes, gxi, so);
    const auto sb = explain::max_sensitivity(*dev_net, x.to(cuda), classes, gxi, so);
    check_close("max-sensitivity", std::vector<float>(sb.begin(), sb.end()), std::vector<float>(sa.begin(), sa.end()), 1e-3, 1e-6);
}

TEST_CASE("cuda:0 computes SmoothGrad, Integrated Gradients, activation maximisation and counterfactuals as the CPU does") {
    // The gradient family's and the model-level methods' own arithmetic (noise, sums, update steps, jitter)
    // on the CUDA backend, more than one batch each, on a small untrained vgg-mini (the emulator runs every
    // GPU thread as a host thread). Reference: the CPU run; tolerance as for the maps above.
    const Device cuda = Device::cuda(0);
    Generator g(4), g2(4);
    auto on_cpu = models::make_model("vgg-mini", {1, 8, 10}, g);
    auto on_dev = models::make_model("vgg-mini", {1, 8, 10}, g2);
    on_dev->to(cuda);
    const Tensor x = uniform(Shape{2, 1, 8, 8}, 0.f, 1.f, g);
    const explain::Trace cpu_trace(*on_cpu, x), dev_trace(*on_dev, x.to(cuda));
    const std::vector<explain::Target> targets{explain::Target::predicted()};
    auto same = [](const std::string& what, const Tensor& got, const Tensor& want) {
        CHECK(got.device() == Device::cuda(0));
        const std::vector<float> w = want.to_vector<float>();
        REQUIRE(max_abs(w) > 0.f);
        check_close(what, got.to_vector<float>(), w, 0.0, 1e-3 * max_abs(w));
    };
    explain::SmoothGradOptions sg;
    sg.samples = 3;
    sg.batch = 4;  // batches of 2 and 1 noisy copies of the 2 images
    same("smoothgrad", explain::smoothgrad(dev_trace, targets, sg), explain::smoothgrad(cpu_trace, targets, sg));
    explain::IntegratedGradientsOptions ig;
    ig.steps = 3;
    ig.batch = 4;  // batches of 2 steps and 1
    same("integrated gradients", explain::integrated_gradients(dev_trace, targets, ig),
         explain::integrated_gradients(cpu_trace, targets, ig));

    explain::ActivationMaxOptions am;
    am.steps = 2;
    am.blur_every = 1;
    am.seed = 5;
    const std::vector<explain::Objective> objectives{{"", 3}, {"features.0", 1}};
    const auto a = explain::activation_maximisation(*on_cpu, Shape{1, 8, 8}, objectives, am);
    const auto b = explain::activation_maximisation(*on_dev, Shape{1, 8, 8}, objectives, am);
    same("activation maximisation", b.images, a.images);
    for (size_t i = 0; i < objectives.size(); ++i) CHECK(b.value[i] == doctest::Approx(a.value[i]).epsilon(1e-3));

    explain::CounterfactualOptions cf;
    cf.steps = 2;
    const std::vector<int32_t> to{1, 2};
    const auto c = explain::counterfactuals(*on_cpu, x, to, cf);
    const auto d = explain::counterfactuals(*on_dev, x.to(cuda), to, cf);
    for (size_t n = 0; n < to.size(); ++n) {
        same("counterfactual", d[n].input, c[n].input);
        CHECK(d[n].steps == c[n].steps);
        CHECK(d[n].distance == doctest::Approx(c[n].distance).epsilon(1e-3));
    }
}

TEST_CASE("cuda:0 runs interventions and a Trace of the intervened model as the CPU does") {
    // do() on two channels of features.2 with each kind of value (Mean and Resample from reference outputs recorded
    // on each device; the same seed draws the same reference rows), then the logits and the input gradient of the
    // intervened model; reference: the CPU run, tolerance as for the maps above.
    const Device cuda = Device::cuda(0);
    Generator g(6), g2(6);
    auto on_cpu = models::make_model("vgg-mini", {1, 8, 10}, g);
    auto on_dev = models::make_model("vgg-mini", {1, 8, 10}, g2);
    on_dev->to(cuda);
    const Tensor x = uniform(Shape{3, 1, 8, 8}, 0.f, 1.f, g), ref = uniform(Shape{4, 1, 8, 8}, 0.f, 1.f, g);
    const explain::LayerOutputs rc = explain::record_outputs(*on_cpu, ref, {"features.2"});
    const explain::LayerOutputs rd = explain::record_outputs(*on_dev, ref.to(cuda), {"features.2"});
    auto same = [](const std::string& what, const Tensor& got, const Tensor& want) {
        CHECK(got.device() == Device::cuda(0));
        const std::vector<float> w = want.to_vector<float>();
        REQUIRE(max_abs(w) > 0.f);
        check_close(what, got.to_vector<float>(), w, 0.0, 1e-3 * max_abs(w));
    };
    for (const explain::DoValue v : {explain::DoValue::Zero, explain::DoValue::Constant, explain::DoValue::Mean, explain::DoValue::Resample}) {
        CAPTURE(explain::do_value_name(v, 0.5f));
        const explain::DoSpec spec{"features.2", {1, 3}, {}, v, 0.5f, {}};
        const explain::Intervention a(*on_cpu, Shape{1, 8, 8}, {spec}, rc, 5), b(*on_dev, Shape{1, 8, 8}, {spec}, rd, 5);
        const explain::Trace tc(*on_cpu, x), td(*on_dev, x.to(cuda));
        same("intervened logits", td.logits(), tc.logits());
        same("intervened layer output", td.layer_output("features.2"), tc.layer_output("features.2"));
        const Tensor seed = tc.seed({explain::Target::of(2)});
        same("intervened gradient", td.gradient(seed.to(cuda))[0], tc.gradient(seed)[0]);
    }
}

TEST_CASE("cuda:0 trains a soft decision tree as the CPU does") {
    // Depth 3 over 1x8x8 inputs, 3 Adam steps on the loss with soft targets and the balance penalty, then the
    // routing. Tolerances as above (losses and parameters rtol 1e-3, atol 1e-5).
    const Device cuda = Device::cuda(0);
    models::SoftTreeConfig tc;
    tc.depth = 3;
    tc.height = tc.width = 8;
    tc.classes = 4;
    tc.beta = 1.5f;
    Generator g1(8), g2(8), gx(9);
    models::SoftTree on_cpu(tc, g1), on_dev(tc, g2);
    on_dev.to(cuda);
    const Tensor x = uniform(Shape{16, 1, 8, 8}, -1.f, 1.f, gx);
    Tensor t;
    {
        autograd::NoGradGuard no_grad;
        t = softmax(uniform(Shape{16, 4}, -2.f, 2.f, gx));
    }
    train::Adam opt_cpu(on_cpu.named_parameters(), kernels::AdamParams{.lr = 0.05f});
    train::Adam opt_dev(on_dev.named_parameters(), kernels::AdamParams{.lr = 0.05f});
    for (int step = 0; step < 3; ++step) {
        const models::SoftTreeLoss a = on_cpu.loss(x, t, 0.3f), b = on_dev.loss(x.to(cuda), t.to(cuda), 0.3f);
        CHECK(b.total.device() == cuda);
        CHECK(b.total.item() == doctest::Approx(a.total.item()).epsilon(1e-3));
        CHECK(b.penalty.item() == doctest::Approx(a.penalty.item()).epsilon(1e-3));
        opt_cpu.zero_grad();
        opt_dev.zero_grad();
        autograd::backward(a.total);
        autograd::backward(b.total);
        opt_cpu.step();
        opt_dev.step();
    }
    const auto pa = on_cpu.named_parameters(), pb = on_dev.named_parameters();
    for (size_t i = 0; i < pa.size(); ++i)
        check_close(pa[i].first, pb[i].second.to_vector<float>(), pa[i].second.to_vector<float>(), 1e-3, 1e-5);
    const models::SoftTreePrediction ra = on_cpu.predict(x), rb = on_dev.predict(x.to(cuda));
    CHECK(rb.leaf == ra.leaf);
    check_close("mixture", rb.mixture.to_vector<float>(), ra.mixture.to_vector<float>(), 1e-3, 1e-5);
}
