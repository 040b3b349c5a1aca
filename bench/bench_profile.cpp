// Where the time of one step goes, layer by layer and pass by pass, against the
// machine's measured peak (core/profile.h): a training step (forward,
// cross-entropy, backward, SGD with momentum), an inference, or an explanation
// (a Trace, then saliency or LRP epsilon-plus-flat) of vgg-mini (28x28x1) or
// VGG-11 (vgg11-small, 32x32x3), as bench_models times them. Prints the CPU,
// the FMA peak on the threads used (cpu::fma_peak_gflops), the wall time per
// step and a Markdown table (docs/performance.md, "Where the time goes").
//   build/bench/bench_profile --model vgg11 --batch 64 --threads 2 --steps 10
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <map>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/factory.h"
#include "core/parallel.h"
#include "core/profile.h"
#include "explain/composite.h"
#include "explain/pruning_run.h"
#include "explain/trace.h"
#include "kernels/cpu/gemm.h"
#include "models/registry.h"
#include "train/optimizer.h"

using namespace gb;

int main(int argc, char** argv) {
    CLI::App app{"Profile one step of a model: time per layer and pass against the FMA peak"};
    std::string model = "vgg-mini", what = "train";
    int64_t batch = 128, steps = 10, warmup = 3;
    int threads = 2;
    app.add_option("--model", model, "vgg-mini (28x28x1) or vgg11 (vgg11-small, 32x32x3)")
        ->check(CLI::IsMember({"vgg-mini", "vgg11"}))
        ->capture_default_str();
    app.add_option("--case", what, "train, inference, saliency or lrp (epsilon-plus-flat)")
        ->check(CLI::IsMember({"train", "inference", "saliency", "lrp"}))
        ->capture_default_str();
    app.add_option("--batch", batch, "Images per step")->check(CLI::Range(1, 4096))->capture_default_str();
    app.add_option("--threads", threads, "CPU threads")->check(CLI::Range(1, 1024))->capture_default_str();
    app.add_option("--steps", steps, "Profiled steps")->check(CLI::Range(1, 100000))->capture_default_str();
    app.add_option("--warmup", warmup, "Steps before profiling")->check(CLI::Range(0, 100000))->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    set_num_threads(threads);
    const bool vgg11 = model == "vgg11";
    const int64_t channels = vgg11 ? 3 : 1, size = vgg11 ? 32 : 28;
    Generator g(1);
    auto net = models::make_model(vgg11 ? "vgg11-small" : "vgg-mini", {channels, size, 10}, g);
    const Tensor x = uniform(Shape{batch, channels, size, size}, 0.f, 1.f, g);
    std::vector<int32_t> l(static_cast<size_t>(batch));
    for (int64_t i = 0; i < batch; ++i) l[static_cast<size_t>(i)] = static_cast<int32_t>(i % 10);
    const Tensor labels = from_vector(l, Shape{batch});
    kernels::SgdParams p;
    p.momentum = 0.9f;
    train::Sgd opt(net->named_parameters(), p);
    const auto composite =
        explain::Composite::preset("epsilon-plus-flat", explain::PresetOptions::with_range(0.f, 1.f));
    if (what == "train") net->train();
    else net->eval();

    auto step = [&] {
        if (what == "train") {
            Tensor loss = cross_entropy((*net)(x), labels);
            opt.zero_grad();
            autograd::backward(loss);
            opt.step();
        } else if (what == "inference") {
            autograd::NoGradGuard ng;
            (void)(*net)(x);
        } else {
            explain::Trace trace(*net, x);
            const Tensor seed = trace.seed({explain::Target::predicted()});
            (void)(what == "saliency" ? trace.gradient(seed)[0] : trace.relevance(composite, seed)[0]);
        }
    };
    for (int64_t i = 0; i < warmup; ++i) step();
    profile::reset();
    profile::set_enabled(true);
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < steps; ++i) step();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    profile::set_enabled(false);
    const int64_t faults = profile::page_faults();

    std::map<const void*, std::string> names;
    for (const auto& [path, layer] : net->named_layers())
        names[layer] = (path.empty() ? std::string("(model)") : path) + " " + layer->describe();
    names[&opt] = "optimizer (SGD, momentum 0.9)";
    const double peak = kernels::cpu::fma_peak_gflops(threads);
    std::printf("CPU: %s; GEMM ISA %s; %d thread(s); FMA peak on them %.0f GFLOP/s\n", explain::cpu_name().c_str(),
                kernels::cpu::gemm_isa_name(kernels::cpu::gemm_isa()), threads, peak);
    std::printf("%s %s, batch %lld: %.3f ms per step (wall, %lld steps after %lld warm-up), %lld minor page faults "
                "per step\n\n",
                model.c_str(), what.c_str(), static_cast<long long>(batch), wall / static_cast<double>(steps) * 1e3,
                static_cast<long long>(steps), static_cast<long long>(warmup),
                static_cast<long long>(faults / steps));
    std::fputs(profile::table([&](const void* o) { return names.count(o) ? names[o] : std::string("?"); }, steps, peak)
                   .c_str(),
               stdout);
    return 0;
}
