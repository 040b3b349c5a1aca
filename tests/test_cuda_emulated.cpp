// What only the emulated CUDA device has (beside test_cuda_device.cpp's suite,
// which test_cuda_emulated runs on it): cuda:0 is the emulator's, its backend is
// the CUDA backend compiled against the emulator, and cuDNN, which has no
// emulation, is refused. GEMM goes through the emulator's column-major
// cublasSgemm, which checks the backend's operand swap.
#include <doctest/doctest.h>

#include "core/cuda_runtime.h"
#include "core/device.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/registry.h"

TEST_CASE("emulated device: cuda:0 exists, host memory starts as NaN, and its backend is the CUDA backend") {
    CHECK(gb::cuda::built());
    CHECK(gb::cuda::device_count() == 1);
    CHECK_THROWS_WITH_AS(gb::Device::cuda(1), doctest::Contains("only 1 GPU(s)"), gb::Error);
    gb::kernels::Backend& be = gb::kernels::backend_for(gb::Device::cuda(0));
    CHECK(be.name() == "cuda");
    CHECK(be.device() == gb::Device::cuda(0));
    CHECK(dynamic_cast<gb::kernels::gpu::CudaBackend*>(&be) != nullptr);
    // A kernel that reads what it never wrote shows up as NaN in the comparisons.
    float* p = static_cast<float*>(gb::cuda::malloc(10 * sizeof(float), 0));
    for (int i = 0; i < 10; ++i) CHECK(p[i] != p[i]);
    gb::cuda::free(p, 0);
    CHECK_THROWS_WITH_AS(gb::cuda::free(&be, 0), doctest::Contains("did not hand out"), gb::Error);
}

TEST_CASE("emulated backend: algorithm names, and cuDNN refused where it is not built") {
    namespace gpu = gb::kernels::gpu;
    CHECK(gpu::parse_gemm_algo("tiled") == gpu::GemmAlgo::Tiled);
    CHECK_THROWS_WITH_AS(gpu::parse_gemm_algo("fast"), doctest::Contains("expected cublas or tiled"), gb::Error);
    CHECK_THROWS_WITH_AS(gpu::parse_conv_algo("winograd"), doctest::Contains("expected cudnn, im2col or implicit"),
                         gb::Error);
    gpu::CudaBackend be(0);
    CHECK(be.conv_algo() == gpu::ConvAlgo::Im2col);
    CHECK_THROWS_WITH_AS(be.set_conv_algo(gpu::ConvAlgo::Cudnn), doctest::Contains("built without it"), gb::Error);
}
