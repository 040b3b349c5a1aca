// The backend comparison suite against the real CUDA backend, plus device
// placement (.to(device), mixing devices is an error). Runs only where a GPU is
// usable; otherwise main says why and exits with 77, which ctest reports as
// "Skipped" (SKIP_RETURN_CODE), never as passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <iostream>

#include "core/cuda_runtime.h"
#include "core/device.h"
#include "core/factory.h"
#include "core/tensor.h"
#include "autograd/engine.h"
#include "autograd/functions.h"
#include "models/registry.h"
#include "train/optimizer.h"
#if defined(GB_WITH_CUDA)
#include "kernels/cuda/registry.h"
#endif

#include "backend_comparison.h"

namespace gbtest {

namespace {
struct DeviceTarget final : Target {
    gb::kernels::Backend& backend() override { return gb::kernels::backend_for(gb::Device::cuda(0)); }
    void* alloc(size_t bytes) override { return gb::cuda::malloc(bytes, 0); }
    void release(void* p) override { gb::cuda::free(p, 0); }
    void upload(void* dst, const void* src, size_t bytes) override { gb::cuda::memcpy_h2d(dst, src, bytes, 0); }
    void download(void* dst, const void* src, size_t bytes) override { gb::cuda::memcpy_d2h(dst, src, bytes, 0); }
#if defined(GB_WITH_CUDA)
    std::vector<std::string> gemm_algos() override { return {"cublas", "tiled"}; }
    std::vector<std::string> conv_algos() override {
        if (gb::kernels::cuda_cudnn_built()) return {"cudnn", "im2col", "implicit"};
        return {"im2col", "implicit"};
    }
    void set_algos(const std::string& gemm, const std::string& conv) override {
        gb::kernels::set_cuda_algorithms(0, gemm, conv);
    }
#else
    std::vector<std::string> gemm_algos() override { return {}; }
    std::vector<std::string> conv_algos() override { return {}; }
    void set_algos(const std::string&, const std::string&) override {}
#endif
};
}  // namespace

Target& target() {
    static DeviceTarget t;
    return t;
}

}  // namespace gbtest

TEST_CASE("tensors move between devices with .to(); ops refuse to mix devices") {
    using namespace gb;
    Generator g(1);
    const Tensor a = uniform(Shape{3, 4}, -1.f, 1.f, g), b = uniform(Shape{3, 4}, -1.f, 1.f, g);
    const Tensor ga = a.to(Device::cuda(0)), gb_ = b.to(Device::cuda(0));
    CHECK(ga.device() == Device::cuda(0));
    CHECK(ga.to(Device::cpu()).to_vector<float>() == a.to_vector<float>());
    const Tensor sum = gb::add(ga, gb_);
    CHECK(sum.device() == Device::cuda(0));
    CHECK(sum.to(Device::cpu()).to_vector<float>() == gb::add(a, b).to_vector<float>());
    CHECK_THROWS_WITH_AS(gb::add(ga, b), doctest::Contains("device"), gb::Error);
}

TEST_CASE("cuda devices get the CUDA backend; freed device memory is reused by the caching allocator") {
    CHECK(gb::kernels::backend_for(gb::Device::cuda(0)).name() == "cuda");
    void* a = gb::cuda::malloc(1000, 0);
    gb::cuda::free(a, 0);
    void* b = gb::cuda::malloc(900, 0);  // the same 512-byte size class
    CHECK(a == b);
    gb::cuda::free(b, 0);
    gb::cuda::empty_cache();
}

TEST_CASE("a vgg-mini training step on the GPU matches the CPU (rtol 1e-3)") {
    using namespace gb;
    for (const char* name : {"vgg-mini", "vgg-mini-bn"}) {
        CAPTURE(name);
        Generator g(3);
        auto cpu_model = models::make_model(name, {1, 28, 10}, g);
        Generator g2(3);
        auto gpu_model = models::make_model(name, {1, 28, 10}, g2);
        gpu_model->to(Device::cuda(0));
        const Tensor x = uniform(Shape{8, 1, 28, 28}, 0.f, 1.f, g);
        std::vector<int32_t> l(8);
        for (int i = 0; i < 8; ++i) l[i] = i % 10;
        const Tensor labels = from_vector(l, Shape{8});
        kernels::SgdParams p;
        p.lr = 0.1f;
        p.momentum = 0.9f;
        train::Sgd cpu_opt(cpu_model->named_parameters(), p), gpu_opt(gpu_model->named_parameters(), p);
        cpu_model->eval();  // no dropout: the two runs draw the same nothing
        gpu_model->eval();
        for (int step = 0; step < 2; ++step) {
            const Tensor cpu_loss = cross_entropy((*cpu_model)(x), labels);
            const Tensor gpu_loss = cross_entropy((*gpu_model)(x.to(Device::cuda(0))), labels.to(Device::cuda(0)));
            CHECK(gpu_loss.item() == doctest::Approx(cpu_loss.item()).epsilon(1e-3));
            cpu_opt.zero_grad();
            gpu_opt.zero_grad();
            autograd::backward(cpu_loss);
            autograd::backward(gpu_loss);
            cpu_opt.step();
            gpu_opt.step();
        }
        const auto cpu_params = cpu_model->named_parameters(), gpu_params = gpu_model->named_parameters();
        for (size_t i = 0; i < cpu_params.size(); ++i)
            gbtest::check_rel(cpu_params[i].first, gpu_params[i].second.to_vector<float>(),
                              cpu_params[i].second.to_vector<float>(), 1e-3, 1e-5);
    }
}

int main(int argc, char** argv) {
    if (gb::cuda::device_count() == 0) {
        std::cout << "test_cuda_device: skipped, no usable GPU: " << gb::cuda::unavailable_reason() << "\n";
        return 77;
    }
    doctest::Context context(argc, argv);
    return context.run();
}
