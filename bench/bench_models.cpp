// End-to-end benchmarks: training steps, inference and explanations of vgg-mini
// (28x28x1) and VGG-11 (vgg11-small, 32x32x3), reporting images/s. The same cases run in
// PyTorch through scripts/bench_pytorch.py, which prints the ratio table.
// Threads: --benchmark_filter selects cases; GB threads come from the /threads:N suffix.
#include <benchmark/benchmark.h>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/factory.h"
#include "core/parallel.h"
#include "explain/cam.h"
#include "explain/trace.h"
#include "models/registry.h"
#include "train/optimizer.h"

using namespace gb;

namespace {

struct Setup {
    std::shared_ptr<models::Vgg> model;
    Tensor x, labels;
};

Setup make(const std::string& name, int64_t channels, int64_t size, int64_t batch) {
    Generator g(1);
    Setup s;
    s.model = models::make_model(name, {channels, size, 10}, g);
    s.x = uniform(Shape{batch, channels, size, size}, 0.f, 1.f, g);
    std::vector<int32_t> l(static_cast<size_t>(batch));
    for (int64_t i = 0; i < batch; ++i) l[static_cast<size_t>(i)] = static_cast<int32_t>(i % 10);
    s.labels = from_vector(l, Shape{batch});
    return s;
}

void finish(benchmark::State& state, int64_t batch) {
    state.SetItemsProcessed(state.iterations() * batch);
    state.counters["img/s"] = benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
}

void train_step(benchmark::State& state, const std::string& name, int64_t channels, int64_t size) {
    set_num_threads(static_cast<int>(state.range(1)));
    const int64_t batch = state.range(0);
    Setup s = make(name, channels, size, batch);
    kernels::SgdParams p;
    p.momentum = 0.9f;
    train::Sgd opt(s.model->named_parameters(), p);
    s.model->train();
    for (auto _ : state) {
        Tensor loss = cross_entropy((*s.model)(s.x), s.labels);
        opt.zero_grad();
        autograd::backward(loss);
        opt.step();
        benchmark::DoNotOptimize(loss.item());
    }
    finish(state, batch);
}

void inference(benchmark::State& state, const std::string& name, int64_t channels, int64_t size) {
    set_num_threads(static_cast<int>(state.range(1)));
    const int64_t batch = state.range(0);
    Setup s = make(name, channels, size, batch);
    s.model->eval();
    autograd::NoGradGuard ng;
    for (auto _ : state) benchmark::DoNotOptimize((*s.model)(s.x).data<float>());
    finish(state, batch);
}

// Explanations include their forward pass: a Trace, then the method.
// One saliency, LRP (the composite) or Grad-CAM (features.8) map from a trace.
Tensor explain_once(explain::Trace& trace, const std::string& method, const explain::Composite& composite,
                    const Tensor& seed) {
    if (method == "saliency") return trace.gradient(seed)[0];
    if (method == "lrp") return trace.relevance(composite, seed)[0];
    return explain::cam(trace, explain::CamMethod::GradCam, "features.8", seed).map;
}

void explanation(benchmark::State& state, const std::string& method) {
    set_num_threads(static_cast<int>(state.range(1)));
    const int64_t batch = state.range(0);
    Setup s = make("vgg-mini", 1, 28, batch);
    const auto composite = explain::Composite::preset("epsilon-plus-flat");
    for (auto _ : state) {
        explain::Trace trace(*s.model, s.x);
        const Tensor seed = trace.seed({explain::Target::predicted()});
        benchmark::DoNotOptimize(explain_once(trace, method, composite, seed).data<float>());
    }
    finish(state, batch);
}

// The same explanations from a trace recorded once, outside the timed loop:
// what a second and third explanation of a batch cost (no forward).
void explanation_from_trace(benchmark::State& state, const std::string& method) {
    set_num_threads(static_cast<int>(state.range(1)));
    const int64_t batch = state.range(0);
    Setup s = make("vgg-mini", 1, 28, batch);
    const auto composite = explain::Composite::preset("epsilon-plus-flat");
    const int64_t forwards_before = explain::Trace::forward_passes();
    explain::Trace trace(*s.model, s.x);
    const Tensor seed = trace.seed({explain::Target::predicted()});
    for (auto _ : state) {
        benchmark::DoNotOptimize(explain_once(trace, method, composite, seed).data<float>());
    }
    if (explain::Trace::forward_passes() - forwards_before != 1) state.SkipWithError("an explanation ran a forward");
    finish(state, batch);
}

}  // namespace

BENCHMARK_CAPTURE(train_step, vgg_mini, std::string("vgg-mini"), 1, 28)->Args({128, 2})->Args({128, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(train_step, vgg11, std::string("vgg11-small"), 3, 32)->Args({64, 2})->Args({64, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(inference, vgg_mini, std::string("vgg-mini"), 1, 28)->Args({1, 1})->Args({1, 2})->Args({64, 2})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(inference, vgg11, std::string("vgg11-small"), 3, 32)->Args({1, 1})->Args({1, 2})->Args({64, 2})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(explanation, saliency, std::string("saliency"))->Args({64, 2})->Args({1, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(explanation, lrp_epsilon_plus_flat, std::string("lrp"))->Args({64, 2})->Args({1, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(explanation, gradcam, std::string("gradcam"))->Args({64, 2})->Args({1, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(explanation_from_trace, saliency, std::string("saliency"))->Args({64, 2})->Args({1, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(explanation_from_trace, lrp_epsilon_plus_flat, std::string("lrp"))->Args({64, 2})->Args({1, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(explanation_from_trace, gradcam, std::string("gradcam"))->Args({64, 2})->Args({1, 1})->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
