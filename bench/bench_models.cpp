// End-to-end benchmarks: training steps, inference and explanations of vgg-mini
// (28x28x1) and VGG-11 (vgg11-small, 32x32x3), reporting images/s, and VGG-16 / VGG-16-BN at
// 224x224 (torchvision's layout, 1000 classes) at batch 1 with the process's peak
// RSS. The same cases run in PyTorch (and Zennit for LRP) through
// scripts/bench_pytorch.py and scripts/bench_vgg16.py, which print the ratio tables.
// Threads: --benchmark_filter selects cases; GB threads come from the /threads:N suffix.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <atomic>
#include <thread>

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

Setup make(const std::string& name, int64_t channels, int64_t size, int64_t batch, int64_t classes = 10) {
    Generator g(1);
    Setup s;
    s.model = models::make_model(name, {channels, size, classes}, g);
    s.x = uniform(Shape{batch, channels, size, size}, 0.f, 1.f, g);
    std::vector<int32_t> l(static_cast<size_t>(batch));
    for (int64_t i = 0; i < batch; ++i) l[static_cast<size_t>(i)] = static_cast<int32_t>(i % 10);
    s.labels = from_vector(l, Shape{batch});
    return s;
}

// Peak resident memory of the process so far, in MB.
double peak_rss_mb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// Throughput, and the process's peak resident memory (one case per process, as the
// scripts run them, makes it the case's peak).
void finish(benchmark::State& state, int64_t batch) {
    state.SetItemsProcessed(state.iterations() * batch);
    state.counters["img/s"] = benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
    state.counters["peak_MB"] = peak_rss_mb();
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

// A neighbour that wants a whole core: one thread spinning while it lives.
class SpinningNeighbour {
public:
    SpinningNeighbour()
        : thread_([this] {
              uint64_t n = 0;
              while (!stop_.load(std::memory_order_relaxed)) benchmark::DoNotOptimize(++n);
          }) {}
    ~SpinningNeighbour() {
        stop_ = true;
        thread_.join();
    }

private:
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// train_step with a spinning neighbour thread for the whole measurement: on 2 threads of a
// 2-core machine, one of glassbox's threads shares its core (docs/performance.md, "Contention").
void train_step_contended(benchmark::State& state, const std::string& name, int64_t channels, int64_t size) {
    SpinningNeighbour neighbour;
    train_step(state, name, channels, size);
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
// One saliency, LRP (the composite) or Grad-CAM (the last conv's rectified output) map from a trace.
Tensor explain_once(explain::Trace& trace, const std::string& method, const explain::Composite& composite,
                    const Tensor& seed) {
    if (method == "saliency") return trace.gradient(seed)[0];
    if (method == "lrp") return trace.relevance(composite, seed)[0];
    return explain::cam(trace, explain::CamMethod::GradCam, explain::default_cam_layer(trace), seed).map;
}

// The input range of [0, 1] pixels (vgg-mini, the small models) for epsilon-gamma-box.
const explain::PresetOptions kUnit = explain::PresetOptions::with_range(0.f, 1.f);

void explanation(benchmark::State& state, const std::string& method) {
    set_num_threads(static_cast<int>(state.range(1)));
    const int64_t batch = state.range(0);
    Setup s = make("vgg-mini", 1, 28, batch);
    const auto composite = explain::Composite::preset("epsilon-plus-flat", kUnit);
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
    const auto composite = explain::Composite::preset("epsilon-plus-flat", kUnit);
    const int64_t forwards_before = explain::Trace::forward_passes();
    explain::Trace trace(*s.model, s.x);
    const Tensor seed = trace.seed({explain::Target::predicted()});
    for (auto _ : state) {
        benchmark::DoNotOptimize(explain_once(trace, method, composite, seed).data<float>());
    }
    if (explain::Trace::forward_passes() - forwards_before != 1) state.SkipWithError("an explanation ran a forward");
    finish(state, batch);
}

// VGG-16 (or VGG-16-BN) at 224x224, batch 1, as torchvision builds it: inference,
// or an explanation including its forward (a Trace). Input normalised with ImageNet's
// mean and std; epsilon-gamma-box takes its ZBox bounds from them, and merges the
// BatchNorms (the default canonizer) on VGG-16-BN.
void vgg16_224(benchmark::State& state, const std::string& model, const std::string& method) {
    set_num_threads(static_cast<int>(state.range(0)));
    Setup s = make(model, 3, 224, 1, 1000);
    s.x = uniform(Shape{1, 3, 224, 224}, -2.f, 2.f);
    s.model->eval();
    const auto composite = explain::Composite::preset(
        "epsilon-gamma-box", explain::PresetOptions::for_normalization({0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}));
    for (auto _ : state) {
        if (method == "inference") {
            autograd::NoGradGuard ng;
            benchmark::DoNotOptimize((*s.model)(s.x).data<float>());
            continue;
        }
        explain::Trace trace(*s.model, s.x);
        const Tensor seed = trace.seed({explain::Target::predicted()});
        benchmark::DoNotOptimize(explain_once(trace, method, composite, seed).data<float>());
    }
    finish(state, 1);
}

}  // namespace

BENCHMARK_CAPTURE(vgg16_224, inference, std::string("vgg16"), std::string("inference"))->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(vgg16_224, saliency, std::string("vgg16"), std::string("saliency"))->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(vgg16_224, gradcam, std::string("vgg16"), std::string("gradcam"))->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(vgg16_224, bn_saliency, std::string("vgg16-bn"), std::string("saliency"))->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(vgg16_224, bn_lrp_epsilon_gamma_box, std::string("vgg16-bn"), std::string("lrp"))->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(train_step, vgg_mini, std::string("vgg-mini"), 1, 28)->Args({128, 2})->Args({128, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(train_step, vgg11, std::string("vgg11-small"), 3, 32)->Args({64, 2})->Args({64, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(train_step_contended, vgg_mini, std::string("vgg-mini"), 1, 28)->Args({128, 2})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(inference, vgg_mini, std::string("vgg-mini"), 1, 28)->Args({1, 1})->Args({1, 2})->Args({64, 2})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(inference, vgg11, std::string("vgg11-small"), 3, 32)->Args({1, 1})->Args({1, 2})->Args({64, 2})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(explanation, saliency, std::string("saliency"))->Args({64, 2})->Args({1, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(explanation, lrp_epsilon_plus_flat, std::string("lrp"))->Args({64, 2})->Args({1, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(explanation, gradcam, std::string("gradcam"))->Args({64, 2})->Args({1, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(explanation_from_trace, saliency, std::string("saliency"))->Args({64, 2})->Args({1, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(explanation_from_trace, lrp_epsilon_plus_flat, std::string("lrp"))->Args({64, 2})->Args({1, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(explanation_from_trace, gradcam, std::string("gradcam"))->Args({64, 2})->Args({1, 1})->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
