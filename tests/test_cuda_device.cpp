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
#include "autograd/functions.h"
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

int main(int argc, char** argv) {
    if (gb::cuda::device_count() == 0) {
        std::cout << "test_cuda_device: skipped, no usable GPU: " << gb::cuda::unavailable_reason() << "\n";
        return 77;
    }
    doctest::Context context(argc, argv);
    return context.run();
}
