// SGEMM throughput in GFLOP/s: square sizes and the GEMMs that vgg-mini
// (28x28x1, batch 64) and VGG-11 (32x32x3) convolutions and linear layers
// issue, on 1 and 2 threads. When OpenBLAS was found at configure time the same
// cases run through its cblas_sgemm as a reference, registered side by side so
// --benchmark_enable_random_interleaving mixes them within one run.
// Names: gemm/<impl>/<case>/threads:<n>; the counter GFLOP/s is 2*M*N*K per call.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/parallel.h"
#include "core/rng.h"
#include "kernels/backend.h"

#ifdef GB_BENCH_OPENBLAS
#include <cblas.h>
#endif

using namespace gb;

namespace {

struct Case {
    std::string name;
    bool ta, tb;
    int64_t M, N, K;
};

// Conv as im2col + GEMM per image (kernels/cpu/conv.cpp): K_out output
// channels, CRS = C*R*S taps, PQ output pixels.
void conv_cases(std::vector<Case>& out, const std::string& name, int64_t K_out, int64_t CRS, int64_t PQ,
                bool data_grad) {
    out.push_back({name + "_fwd", false, false, K_out, PQ, CRS});
    if (data_grad) out.push_back({name + "_bwd_data", true, false, CRS, PQ, K_out});
    out.push_back({name + "_bwd_weight", false, true, K_out, CRS, PQ});
}

// Linear y[N, out] = x[N, in] * W[out, in]^T and its two backward GEMMs (layers/linear.cpp).
void linear_cases(std::vector<Case>& out, const std::string& name, int64_t batch, int64_t in, int64_t outs) {
    out.push_back({name + "_fwd", false, true, batch, outs, in});
    out.push_back({name + "_bwd_data", false, false, batch, in, outs});
    out.push_back({name + "_bwd_weight", true, false, outs, in, batch});
}

std::vector<Case> cases() {
    std::vector<Case> c;
    for (int64_t n : {256, 512, 1024, 2048}) c.push_back({"square" + std::to_string(n), false, false, n, n, n});
    // vgg-mini on 28x28x1 at batch 64.
    conv_cases(c, "mini_conv1", 32, 9, 784, false);
    conv_cases(c, "mini_conv2", 32, 288, 784, true);
    conv_cases(c, "mini_conv3", 64, 288, 196, true);
    conv_cases(c, "mini_conv4", 64, 576, 196, true);
    c.push_back({"mini_conv2_fwd_batched", false, false, 32, 64 * 784, 288});
    c.push_back({"mini_conv4_fwd_batched", false, false, 64, 64 * 196, 576});
    linear_cases(c, "mini_fc1", 64, 3136, 256);
    linear_cases(c, "mini_fc2", 64, 256, 10);
    // VGG-11 on 32x32x3: (in, out, spatial) per conv.
    const int64_t vgg11[8][3] = {{3, 64, 32},    {64, 128, 16},  {128, 256, 8}, {256, 256, 8},
                                 {256, 512, 4},  {512, 512, 4},  {512, 512, 2}, {512, 512, 2}};
    for (int l = 0; l < 8; ++l)
        conv_cases(c, "vgg11_conv" + std::to_string(l + 1), vgg11[l][1], vgg11[l][0] * 9, vgg11[l][2] * vgg11[l][2],
                   l > 0);
    return c;
}

struct Operands {
    std::vector<float> A, B, C;
    explicit Operands(const Case& c) {
        Generator g(1);
        A.resize(static_cast<size_t>(c.M * c.K));
        B.resize(static_cast<size_t>(c.K * c.N));
        C.resize(static_cast<size_t>(c.M * c.N));
        for (float& x : A) x = g.uniform(-1.f, 1.f);
        for (float& x : B) x = g.uniform(-1.f, 1.f);
    }
};

void finish(benchmark::State& state, const Case& c) {
    state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * static_cast<double>(c.M * c.N * c.K),
                                                   benchmark::Counter::kIsIterationInvariantRate);
}

void run_glassbox(benchmark::State& state, const Case& c, int threads) {
    set_num_threads(threads);
    Operands o(c);
    kernels::Backend& be = kernels::cpu_backend();
    for (auto _ : state) {
        be.gemm(c.ta, c.tb, c.M, c.N, c.K, 1.f, o.A.data(), c.ta ? c.M : c.K, o.B.data(), c.tb ? c.K : c.N, 0.f,
                o.C.data(), c.N);
        benchmark::ClobberMemory();
    }
    finish(state, c);
}

#ifdef GB_BENCH_OPENBLAS
void run_openblas(benchmark::State& state, const Case& c, int threads) {
    openblas_set_num_threads(threads);
    Operands o(c);
    for (auto _ : state) {
        cblas_sgemm(CblasRowMajor, c.ta ? CblasTrans : CblasNoTrans, c.tb ? CblasTrans : CblasNoTrans,
                    static_cast<int>(c.M), static_cast<int>(c.N), static_cast<int>(c.K), 1.f, o.A.data(),
                    static_cast<int>(c.ta ? c.M : c.K), o.B.data(), static_cast<int>(c.tb ? c.K : c.N), 0.f,
                    o.C.data(), static_cast<int>(c.N));
        benchmark::ClobberMemory();
    }
    finish(state, c);
}
#endif

const bool registered = [] {
    for (const Case& c : cases())
        for (int threads : {1, 2}) {
            const std::string suffix = "/" + c.name + "/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(("gemm/glassbox" + suffix).c_str(), run_glassbox, c, threads)->UseRealTime();
#ifdef GB_BENCH_OPENBLAS
            benchmark::RegisterBenchmark(("gemm/openblas" + suffix).c_str(), run_openblas, c, threads)->UseRealTime();
#endif
        }
    return true;
}();

}  // namespace

BENCHMARK_MAIN();
