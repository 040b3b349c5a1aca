// `glassbox info`: version, build options, devices found, and a tiny
// forward/backward self-check (a finite-difference probe of one gradient).
// In order, on stdout: the version, the build options, the CPU's thread count and each CUDA device (or why there is
// none), the model names, then self_check's line. Writes no files. The exit status is non-zero (a
// CLI::RuntimeError) when the self-check disagrees.
#include <CLI/CLI.hpp>

#include <cmath>
#include <iostream>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "cli/commands.h"
#include "core/cuda_runtime.h"
#include "core/factory.h"
#include "core/parallel.h"
#include "layers/layers.h"
#include "models/registry.h"

namespace gb::cli {

namespace {

// Conv -> ReLU -> MaxPool -> Linear on a 2x1x6x6 batch; checks d(loss)/d(w0) of the
// first conv weight against a central difference. Returns true when they agree.
bool self_check(std::ostream& out) {
    using namespace gb::layers;
    Generator g(2024);
    Sequential net;
    auto conv = net.add(std::make_shared<Conv2d>(1, 4, 3, Conv2dOptions{.padding = 1}, g));
    net.add(std::make_shared<ReLU>());
    net.add(std::make_shared<MaxPool2d>(2));
    net.add(std::make_shared<Flatten>());
    net.add(std::make_shared<Linear>(4 * 3 * 3, 3, true, g));
    const Tensor x = uniform(Shape{2, 1, 6, 6}, 0.f, 1.f, g);
    const Tensor labels = from_vector(std::vector<int32_t>{0, 2}, Shape{2});

    Tensor loss = cross_entropy(net(x), labels);
    autograd::backward(loss);
    const float analytic = conv->weight().grad().to_vector<float>()[0];

    Tensor w = conv->weight();
    const float h = 1e-2f, w0 = w.data<float>()[0];
    autograd::NoGradGuard no_grad;
    w.data<float>()[0] = w0 + h;
    const float lp = cross_entropy(net(x), labels).item();
    w.data<float>()[0] = w0 - h;
    const float lm = cross_entropy(net(x), labels).item();
    w.data<float>()[0] = w0;
    const float numeric = (lp - lm) / (2 * h);
    const bool ok = std::fabs(numeric - analytic) <= 1e-3f + 2e-2f * std::fabs(analytic);
    out << "self-check: loss " << loss.item() << ", dL/dw[0] analytic " << analytic << " vs finite difference "
        << numeric << ": " << (ok ? "OK" : "MISMATCH") << "\n";
    return ok;
}

int run_info() {
    std::cout << "glassbox " << GB_VERSION << "\n";
    std::cout << "build: " << GB_BUILD_OPTIONS << "\n";
    std::cout << "devices:\n  cpu (" << num_threads() << " threads)\n";
    const int n = cuda::device_count();
    for (int i = 0; i < n; ++i) std::cout << "  cuda:" << i << " " << cuda::device_name(i) << "\n";
    if (n == 0) std::cout << "  no CUDA device: " << cuda::unavailable_reason() << "\n";
    std::cout << "models: " << models::model_names_text() << "\n";
    return self_check(std::cout) ? 0 : 1;
}

}  // namespace

void add_info_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("info", "Print version, build options, devices and run a self-check");
    cmd->callback([] {
        if (const int rc = run_info(); rc != 0) throw CLI::RuntimeError(rc);
    });
}

}  // namespace gb::cli
