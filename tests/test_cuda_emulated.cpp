// The CUDA backend's kernels and launchers, compiled by the host compiler
// against the CUDA emulator (tests/cuda_emulation/) and run through the backend
// comparison suite: every hand-written kernel is checked against the CPU
// backend on every ctest run, GPU or not. GEMM goes through the emulator's
// column-major cublasSgemm, which checks the backend's operand swap; cuDNN has
// no emulation and is covered by test_cuda_device on a GPU.
#include "cuda_emulation/cuda_emulation.h"

#include "kernels/cuda/batchnorm.cuh"
#include "kernels/cuda/conv.cuh"
#include "kernels/cuda/cuda_backend.cuh"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/gemm.cuh"
#include "kernels/cuda/pool.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/resize.cuh"
#include "kernels/cuda/softmax.cuh"

#include "backend_comparison.h"

namespace gbtest {

namespace {
namespace gpu = gb::kernels::gpu;

struct EmulatedTarget final : Target {
    gpu::CudaBackend be{0};
    gb::kernels::Backend& backend() override { return be; }
    void* alloc(size_t bytes) override { return gb::cuda_emu::device_malloc(bytes); }
    void release(void* p) override { gb::cuda_emu::device_free(p); }
    void upload(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
    void download(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
    std::vector<std::string> gemm_algos() override { return {"cublas", "tiled"}; }
    std::vector<std::string> conv_algos() override { return {"im2col", "implicit"}; }
    void set_algos(const std::string& gemm, const std::string& conv) override {
        be.set_gemm_algo(gpu::parse_gemm_algo(gemm));
        be.set_conv_algo(gpu::parse_conv_algo(conv));
    }
};
}  // namespace

Target& target() {
    static EmulatedTarget t;
    return t;
}

}  // namespace gbtest

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
