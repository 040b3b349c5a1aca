// Data-parallel training's device path (train/data_parallel.h): gradient buckets in a CUDA device's memory,
// filled and read back with the device's kernels and summed by dist::Comm::start_allreduce_sum with the
// device, and BatchNorm buffers averaged there; against the same on the CPU. This program links the emulated
// CUDA device (tests/CMakeLists.txt): its sums go through host memory and MPI, the path of builds without
// NCCL; the NCCL call itself (core/distributed_nccl.cpp) needs GPUs, and is compiled and linked by every CUDA
// build. ctest runs it alone and, with MPI, under mpirun -n 2.
// Tolerance (reference: the CPU run): the backends sum in different orders, so rtol 1e-5 on the gradients.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "core/distributed.h"
#include "core/factory.h"
#include "layers/batchnorm.h"
#include "layers/linear.h"
#include "train/data_parallel.h"

using namespace gb;

namespace {

// Rank r's rows (2 + r of a batch of sum_q (2 + q)) through two Linear layers on `device`; the synchronised,
// averaged gradients, in parameter order, on the CPU.
std::vector<std::vector<float>> averaged_gradients(Device device) {
    const dist::Comm& w = dist::world();
    Generator g(5);
    layers::Linear a(6, 5, true, g), b(5, 3, true, g);
    a.to(device);
    b.to(device);
    train::NamedTensors params = a.named_parameters("a.");
    for (auto& p : b.named_parameters("b.")) params.push_back(p);
    train::GradientSync sync(w, params, 16);
    int64_t total = 0;
    for (int q = 0; q < w.size(); ++q) total += 2 + q;
    const int64_t rows = 2 + w.rank();
    for (int q = 0; q < w.rank(); ++q) uniform(Shape{2 + q, 6}, -1.f, 1.f, g);  // the other ranks' rows
    const Tensor x = uniform(Shape{rows, 6}, -1.f, 1.f, g).to(device);
    sync.begin(rows, total);
    autograd::backward(scale(sum(b(a(x))), 1.f / static_cast<float>(rows)), Tensor(), false,
                       [&](TensorImpl& leaf) { sync.ready(leaf); });
    sync.finish();
    std::vector<std::vector<float>> out;
    for (auto& [name, p] : params) out.push_back(p.grad().to(Device::cpu()).to_vector<float>());
    return out;
}

}  // namespace

TEST_CASE("GradientSync on a CUDA device: the CPU's averaged gradients") {
    const auto cpu = averaged_gradients(Device::cpu());
    const auto dev = averaged_gradients(Device::cuda(0));
    REQUIRE(cpu.size() == dev.size());
    for (size_t k = 0; k < cpu.size(); ++k) {
        CAPTURE(k);
        REQUIRE(cpu[k].size() == dev[k].size());
        for (size_t i = 0; i < cpu[k].size(); ++i) CHECK(dev[k][i] == doctest::Approx(cpu[k][i]).epsilon(1e-5));
    }
}

TEST_CASE("average_buffers on a CUDA device: the ranks' mean running statistics") {
    const dist::Comm& w = dist::world();
    layers::BatchNorm2d bn(3);
    bn.to(Device::cuda(0));
    // Rank r's running mean: r + 1 per channel; the mean over ranks is (P + 1) / 2.
    bn.running_mean().copy_from(full(Shape{3}, static_cast<float>(w.rank() + 1)));
    train::average_buffers(w, bn);
    for (float v : bn.running_mean().to(Device::cpu()).to_vector<float>())
        CHECK(v == doctest::Approx((w.size() + 1) / 2.0));
}
