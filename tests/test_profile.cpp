// core/profile.h: self times of nested scopes add up to the outermost scope's
// time; a vgg-mini training step is covered layer by layer and pass by pass with
// the floating-point operations of each convolution and linear layer (closed
// form: 2*N*K*P*Q*C*R*S and 2*N*in*out per pass); a closed profiler records
// nothing; the FMA peak the tables are held against is measured.
#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <thread>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "core/factory.h"
#include "core/profile.h"
#include "kernels/cpu/gemm.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "models/registry.h"
#include "train/optimizer.h"

using namespace gb;

namespace {

// Enables the profiler for a scope of the test, and leaves it closed and empty.
struct Profiling {
    Profiling() {
        profile::reset();
        profile::set_enabled(true);
    }
    ~Profiling() {
        profile::set_enabled(false);
        profile::reset();
    }
};

void busy(double seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
    }
}

}  // namespace

TEST_CASE("nested scopes record self times that add up to the outer scope's time, and their flops") {
    const int owner = 0;
    double outer_elapsed = 0;
    {
        Profiling on;
        const auto t0 = std::chrono::steady_clock::now();
        {
            profile::Scope outer(&owner, "outer");
            profile::add_flops(10);
            busy(2e-3);
            for (int i = 0; i < 3; ++i) {
                profile::Scope inner(&owner, std::string("inner"));
                profile::add_flops(5);
                busy(1e-3);
            }
        }
        outer_elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const auto rows = profile::rows();
        REQUIRE(rows.size() == 2);
        // Recorded in the order scopes closed: the inner ones first.
        CHECK(rows[0].pass == "inner");
        CHECK(rows[0].calls == 3);
        CHECK(rows[0].flops == 15);
        CHECK(rows[1].pass == "outer");
        CHECK(rows[1].calls == 1);
        CHECK(rows[1].flops == 10);
        CHECK(rows[0].owner == &owner);
        // Self times partition the outer scope's time: their sum is its elapsed time, which the
        // test's own clock brackets.
        CHECK(rows[0].seconds >= 3e-3);
        CHECK(rows[1].seconds >= 2e-3);
        CHECK(rows[0].seconds + rows[1].seconds <= outer_elapsed);
        const std::string t = profile::table([](const void*) { return std::string("owner"); }, 1, 0);
        CHECK(t.find("| owner | inner | 3 |") != std::string::npos);
        CHECK(t.find("**total**") != std::string::npos);
    }
    CHECK(profile::rows().empty());
}

TEST_CASE("a closed profiler records nothing") {
    profile::reset();
    {
        profile::Scope s(nullptr, "closed");
        profile::add_flops(1);
    }
    CHECK(profile::rows().empty());
}

TEST_CASE("a vgg-mini training step: every layer's passes, with their flops") {
    Generator g(3);
    auto net = models::make_model("vgg-mini", {1, 28, 10}, g);
    const int64_t N = 4;
    const Tensor x = uniform(Shape{N, 1, 28, 28}, 0.f, 1.f, g);
    const Tensor labels = from_vector(std::vector<int32_t>{0, 1, 2, 3}, Shape{N});
    train::Sgd opt(net->named_parameters(), kernels::SgdParams{});
    net->train();
    std::map<std::pair<const void*, std::string>, profile::Row> rows;
    {
        Profiling on;
        Tensor loss = cross_entropy((*net)(x), labels);
        opt.zero_grad();
        autograd::backward(loss);
        opt.step();
        for (const auto& r : profile::rows()) rows[{r.owner, r.pass}] = r;
    }
    auto row = [&](const void* owner, const std::string& pass) {
        const auto it = rows.find({owner, pass});
        return it == rows.end() ? profile::Row{owner, pass, 0, 0, 0} : it->second;
    };
    int convs = 0, linears = 0;
    for (const auto& entry : net->named_layers()) {
        const std::string& path = entry.first;  // (not a structured binding: clang 14 cannot capture one)
        const layers::Layer* layer = entry.second;
        CAPTURE(path);
        if (const auto* conv = dynamic_cast<const layers::Conv2d*>(layer)) {
            // vgg-mini: 3x3 "same" convolutions at 28x28 (the first two) and 14x14.
            const int64_t hw = convs < 2 ? 28 : 14;
            const double flops = 2.0 * N * conv->out_channels() * hw * hw * conv->in_channels() * 9;
            const auto fwd = row(layer, "forward + ReLU");  // Sequential fuses each Conv2d with its ReLU
            CHECK(fwd.calls == 1);
            CHECK(fwd.flops == flops);
            CHECK(row(layer, "backward-weight").flops == flops);
            // The first layer's input needs no gradient.
            CHECK(row(layer, "backward-data").flops == (convs == 0 ? 0.0 : flops));
            CHECK(row(layer, "backward ReLU mask").calls == 1);
            ++convs;
        } else if (const auto* lin = dynamic_cast<const layers::Linear*>(layer)) {
            const double flops = 2.0 * N * lin->in_features() * lin->out_features();
            CHECK(row(layer, "forward").flops == flops);
            CHECK(row(layer, "backward-data").flops == flops);
            CHECK(row(layer, "backward-weight").flops == flops);
            ++linears;
        }
    }
    CHECK(convs == 4);
    CHECK(linears == 2);
    CHECK(row(&opt, "step").calls == 1);
    CHECK(row(nullptr, "CrossEntropyBackward").calls == 1);
}

TEST_CASE("the FMA peak is measured on one and on two threads") {
    const double one = kernels::cpu::fma_peak_gflops(1);
    CHECK(one > 0.1);
    CHECK(kernels::cpu::fma_peak_gflops(2) > 0.1);
    CHECK_THROWS_AS(kernels::cpu::fma_peak_gflops(0), Error);
}
