// CUDA backend kernels (CUDA builds only), for a machine with a GPU:
//   GEMM    hand-written tiled SGEMM vs cuBLAS, GFLOP/s       (BM_Gemm/<algo>/<size>)
//   conv    implicit GEMM vs im2col+cuBLAS vs cuDNN, GFLOP/s   (BM_Conv*/<algo>/<layer>)
//   memory  element-wise ops and reductions, GB/s of the bytes each must move
// Times are CUDA-event times of the work on the GPU (manual time), one backend
// call per iteration. Without a GPU the program says why and exits 0.
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <iostream>
#include <string>
#include <vector>

#include "core/cuda_runtime.h"
#include "core/device.h"
#include "kernels/backend.h"
#include "kernels/cuda/registry.h"

using namespace gb;
using namespace gb::kernels;

namespace {

const char* const kGemmAlgos[] = {"cublas", "tiled"};
const char* const kConvAlgos[] = {"cudnn", "im2col", "implicit"};

// Device buffer of n floats filled with a constant.
struct Buf {
    explicit Buf(int64_t n, float v = 0.5f) : n(n), p(static_cast<float*>(cuda::malloc(n * sizeof(float) + 64, 0))) {
        backend_for(Device::cuda(0)).fill(n, v, p);
    }
    ~Buf() { cuda::free(p, 0); }
    int64_t n;
    float* p;
};

// Runs fn once per iteration, timed by CUDA events.
template <typename Fn>
void time_gpu(benchmark::State& state, Fn&& fn) {
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    fn();  // warm-up: algorithm choice, workspaces, cuBLAS handle
    cudaDeviceSynchronize();
    for (auto _ : state) {
        cudaEventRecord(start);
        fn();
        cudaEventRecord(stop);
        cudaEventSynchronize(stop);
        float ms = 0.f;
        cudaEventElapsedTime(&ms, start, stop);
        state.SetIterationTime(ms * 1e-3);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
}

void rate(benchmark::State& state, const char* name, double per_iteration) {
    state.counters[name] = benchmark::Counter(per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Gemm(benchmark::State& state) {
    const std::string algo = kGemmAlgos[state.range(0)];
    const int64_t n = state.range(1);
    set_cuda_algorithms(0, algo, "im2col");
    state.SetLabel(algo);
    Buf a(n * n), b(n * n), c(n * n);
    Backend& be = backend_for(Device::cuda(0));
    time_gpu(state, [&] { be.gemm(false, false, n, n, n, 1.f, a.p, n, b.p, n, 0.f, c.p, n); });
    rate(state, "GFLOP/s", 2.0 * n * n * n * 1e-9);
}
BENCHMARK(BM_Gemm)->ArgsProduct({{0, 1}, {512, 1024, 2048, 4096}})->UseManualTime();

// VGG-style layers on CIFAR-sized inputs: {N, C, H, K}, 3x3, stride 1, pad 1.
const int64_t kLayers[][4] = {{64, 3, 32, 64}, {64, 64, 32, 64}, {64, 128, 16, 128}, {64, 256, 8, 256}};

enum class ConvPass { Forward, BackwardData, BackwardWeight };

void conv_bench(benchmark::State& state, ConvPass pass) {
    const std::string algo = kConvAlgos[state.range(0)];
    if (algo == "cudnn" && !cuda_cudnn_built()) {
        state.SkipWithError("built without cuDNN");
        return;
    }
    const int64_t* l = kLayers[state.range(1)];
    set_cuda_algorithms(0, "cublas", algo);
    const Conv2dGeom g = make_conv2d_geom(l[0], l[1], l[2], l[2], l[3], 3, 3, 1, 1, 1, 1);
    state.SetLabel(algo + " N" + std::to_string(g.N) + " C" + std::to_string(g.C) + " " + std::to_string(g.H) + "x" +
                   std::to_string(g.W) + " K" + std::to_string(g.K));
    Buf x(g.x_numel()), w(g.w_numel()), y(g.y_numel());
    Backend& be = backend_for(Device::cuda(0));
    time_gpu(state, [&] {
        switch (pass) {
            case ConvPass::Forward: be.conv2d_forward(g, x.p, w.p, nullptr, y.p); break;
            case ConvPass::BackwardData: be.conv2d_backward_data(g, y.p, w.p, x.p); break;
            case ConvPass::BackwardWeight: be.conv2d_backward_weight(g, x.p, y.p, w.p, nullptr); break;
        }
    });
    rate(state, "GFLOP/s", g.flops() * 1e-9);
}
void BM_ConvForward(benchmark::State& state) { conv_bench(state, ConvPass::Forward); }
void BM_ConvBackwardData(benchmark::State& state) { conv_bench(state, ConvPass::BackwardData); }
void BM_ConvBackwardWeight(benchmark::State& state) { conv_bench(state, ConvPass::BackwardWeight); }
BENCHMARK(BM_ConvForward)->ArgsProduct({{0, 1, 2}, {0, 1, 2, 3}})->UseManualTime();
BENCHMARK(BM_ConvBackwardData)->ArgsProduct({{0, 1, 2}, {0, 1, 2, 3}})->UseManualTime();
BENCHMARK(BM_ConvBackwardWeight)->ArgsProduct({{0, 1, 2}, {0, 1, 2, 3}})->UseManualTime();

constexpr int64_t kElements = int64_t{1} << 24;

void BM_Relu(benchmark::State& state) {
    Buf x(kElements), y(kElements);
    Backend& be = backend_for(Device::cuda(0));
    time_gpu(state, [&] { be.relu_forward(kElements, x.p, y.p); });
    rate(state, "GB/s", 2.0 * kElements * sizeof(float) * 1e-9);
}
BENCHMARK(BM_Relu)->UseManualTime();

void BM_Add(benchmark::State& state) {
    Buf a(kElements), b(kElements), c(kElements);
    Backend& be = backend_for(Device::cuda(0));
    time_gpu(state, [&] { be.add(kElements, a.p, b.p, c.p); });
    rate(state, "GB/s", 3.0 * kElements * sizeof(float) * 1e-9);
}
BENCHMARK(BM_Add)->UseManualTime();

void BM_Adam(benchmark::State& state) {
    Buf p(kElements), g(kElements), m(kElements), v(kElements);
    Backend& be = backend_for(Device::cuda(0));
    int64_t step = 0;
    time_gpu(state, [&] { be.adam_step(kElements, AdamParams{}, ++step, p.p, g.p, m.p, v.p); });
    rate(state, "GB/s", 7.0 * kElements * sizeof(float) * 1e-9);
}
BENCHMARK(BM_Adam)->UseManualTime();

// sum_dim of [outer, reduce, inner]: {1, 2^24, 1} one long row, {4096, 4096, 1} rows, {64, 256, 1024} columns.
void BM_SumDim(benchmark::State& state) {
    const int64_t outer = state.range(0), reduce = state.range(1), inner = state.range(2);
    Buf x(outer * reduce * inner), out(outer * inner);
    Backend& be = backend_for(Device::cuda(0));
    time_gpu(state, [&] { be.sum_dim(outer, reduce, inner, x.p, out.p); });
    rate(state, "GB/s", static_cast<double>(outer * reduce * inner) * sizeof(float) * 1e-9);
}
BENCHMARK(BM_SumDim)->Args({1, kElements, 1})->Args({4096, 4096, 1})->Args({64, 256, 1024})->UseManualTime();

void BM_Softmax(benchmark::State& state) {
    const int64_t rows = 16384, cols = state.range(0);
    Buf x(rows * cols), y(rows * cols);
    Backend& be = backend_for(Device::cuda(0));
    time_gpu(state, [&] { be.softmax_forward(rows, cols, x.p, y.p); });
    rate(state, "GB/s", 2.0 * rows * cols * sizeof(float) * 1e-9);
}
BENCHMARK(BM_Softmax)->Arg(10)->Arg(1000)->UseManualTime();

void BM_BatchNormTrain(benchmark::State& state) {
    const int64_t N = 64, C = 128, HW = 256;
    Buf x(N * C * HW), y(N * C * HW), gamma(C, 1.f), beta(C, 0.f), rm(C), rv(C, 1.f), mean(C), invstd(C);
    Backend& be = backend_for(Device::cuda(0));
    time_gpu(state, [&] {
        be.batchnorm_forward_train(N, C, HW, x.p, gamma.p, beta.p, 1e-5f, 0.1f, rm.p, rv.p, y.p, mean.p, invstd.p);
    });
    rate(state, "GB/s", 4.0 * N * C * HW * sizeof(float) * 1e-9);  // two statistics passes, read + write
}
BENCHMARK(BM_BatchNormTrain)->UseManualTime();

void BM_BiasGrad(benchmark::State& state) {
    const int64_t N = 64, C = 128, HW = 256;
    Buf dy(N * C * HW), db(C);
    Backend& be = backend_for(Device::cuda(0));
    time_gpu(state, [&] { be.bias_grad(N, C, HW, dy.p, db.p); });
    rate(state, "GB/s", static_cast<double>(N * C * HW) * sizeof(float) * 1e-9);
}
BENCHMARK(BM_BiasGrad)->UseManualTime();

}  // namespace

int main(int argc, char** argv) {
    if (cuda::device_count() == 0) {
        std::cout << "bench_cuda: no usable GPU (" << cuda::unavailable_reason() << "); nothing to measure\n";
        return 0;
    }
    std::cout << "bench_cuda on " << cuda::device_name(0) << "\n";
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
