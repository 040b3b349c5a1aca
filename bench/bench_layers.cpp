// The CPU backend's convolution and pooling kernels layer by layer: every conv
// of vgg-mini (28x28x1) and VGG-11 (32x32x3) at batch 64 and of VGG-16
// (224x224x3) at batch 1, forward and both backwards, and their 2x2 max pools
// forward and backward, on 1 and 2 threads.
// Counters: GFLOP/s for convolutions (2*N*K*P*Q*C*R*S per call, wall-clock
// time), GB/s for pooling (bytes read and written once).
// Names: conv/<model>_conv<i>/<pass>/threads:<n>, maxpool/<model>_pool<i>/<pass>/threads:<n>.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/parallel.h"
#include "core/rng.h"
#include "kernels/backend.h"
#include "kernels/geometry.h"

using namespace gb;
using namespace gb::kernels;

namespace {

std::vector<float> random_values(int64_t n, Generator& g) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = g.uniform(-1.f, 1.f);
    return v;
}

enum class Pass { Forward, BackwardData, BackwardWeight };

void conv(benchmark::State& state, Conv2dGeom g, Pass pass) {
    set_num_threads(static_cast<int>(state.range(0)));
    Generator gen(1);
    const auto x = random_values(g.x_numel(), gen), w = random_values(g.w_numel(), gen);
    const auto bias = random_values(g.K, gen), dy = random_values(g.y_numel(), gen);
    std::vector<float> y(static_cast<size_t>(g.y_numel())), dx(static_cast<size_t>(g.x_numel()));
    std::vector<float> dw(static_cast<size_t>(g.w_numel())), db(static_cast<size_t>(g.K));
    Backend& be = cpu_backend();
    for (auto _ : state) {
        if (pass == Pass::Forward) be.conv2d_forward(g, x.data(), w.data(), bias.data(), y.data());
        if (pass == Pass::BackwardData) be.conv2d_backward_data(g, dy.data(), w.data(), dx.data());
        if (pass == Pass::BackwardWeight) be.conv2d_backward_weight(g, x.data(), dy.data(), dw.data(), db.data());
        benchmark::ClobberMemory();
    }
    state.counters["GFLOP/s"] = benchmark::Counter(g.flops() * static_cast<double>(state.iterations()) * 1e-9,
                                                   benchmark::Counter::kIsRate);
}

void maxpool(benchmark::State& state, Pool2dGeom g, bool backward) {
    set_num_threads(static_cast<int>(state.range(0)));
    Generator gen(2);
    const auto x = random_values(g.x_numel(), gen), dy = random_values(g.y_numel(), gen);
    std::vector<float> y(static_cast<size_t>(g.y_numel())), dx(static_cast<size_t>(g.x_numel()));
    std::vector<int32_t> idx(static_cast<size_t>(g.y_numel()));
    Backend& be = cpu_backend();
    be.maxpool2d_forward(g, x.data(), y.data(), idx.data());
    for (auto _ : state) {
        if (backward)
            be.maxpool2d_backward(g, dy.data(), idx.data(), dx.data());
        else
            be.maxpool2d_forward(g, x.data(), y.data(), idx.data());
        benchmark::ClobberMemory();
    }
    // Forward reads x, writes y and the indices; backward reads dy and the indices, writes dx.
    const double bytes = 4.0 * static_cast<double>(g.x_numel() + 2 * g.y_numel());
    state.counters["GB/s"] = benchmark::Counter(bytes * static_cast<double>(state.iterations()) * 1e-9,
                                                benchmark::Counter::kIsRate);
}

// The 3x3 "same" convolutions and 2x2 pools of a VGG feature stack ("M" = pool).
void register_model(const std::string& model, int64_t batch, int64_t channels, int64_t size,
                    const std::vector<int64_t>& cfg) {
    int conv_index = 0, pool_index = 0;
    for (int64_t v : cfg) {
        if (v == 0) {
            if (size < 2) continue;
            const Pool2dGeom g = make_pool2d_geom(batch, channels, size, size, 2, 2, 2, 2, 0, 0);
            const std::string name = "maxpool/" + model + "_pool" + std::to_string(++pool_index);
            benchmark::RegisterBenchmark((name + "/forward").c_str(), maxpool, g, false)->Arg(1)->Arg(2)->UseRealTime();
            benchmark::RegisterBenchmark((name + "/backward").c_str(), maxpool, g, true)->Arg(1)->Arg(2)->UseRealTime();
            size /= 2;
            continue;
        }
        const Conv2dGeom g = make_conv2d_geom(batch, channels, size, size, v, 3, 3, 1, 1, 1, 1);
        const std::string name = "conv/" + model + "_conv" + std::to_string(++conv_index);
        benchmark::RegisterBenchmark((name + "/forward").c_str(), conv, g, Pass::Forward)->Arg(1)->Arg(2)->UseRealTime();
        if (conv_index > 1)  // the first layer's input needs no gradient
            benchmark::RegisterBenchmark((name + "/backward_data").c_str(), conv, g, Pass::BackwardData)
                ->Arg(1)->Arg(2)->UseRealTime();
        benchmark::RegisterBenchmark((name + "/backward_weight").c_str(), conv, g, Pass::BackwardWeight)
            ->Arg(1)->Arg(2)->UseRealTime();
        channels = v;
    }
}

}  // namespace

int main(int argc, char** argv) {
    register_model("vgg_mini", 64, 1, 28, {32, 32, 0, 64, 64, 0});
    register_model("vgg11", 64, 3, 32, {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0});
    register_model("vgg16_224_b1", 1, 3, 224,
                   {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0});
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
