// The CudaBackend object: algorithm choice from the environment, the current
// device, the cuBLAS handle's lifetime, and one backend per GPU registered for
// backend_for() (on a real GPU under nvcc, on the emulated device otherwise).
#pragma once

#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

#include "cuda_backend.h"
#include "registry.h"
#include "../registry.h"

GB_GPU_BEGIN

bool cudnn_built() {
#if defined(__CUDACC__) && defined(GB_WITH_CUDNN)
    return true;
#else
    return false;
#endif
}

GemmAlgo parse_gemm_algo(const std::string& text) {
    if (text == "cublas") return GemmAlgo::Cublas;
    if (text == "tiled") return GemmAlgo::Tiled;
    GB_FAIL("GB_CUDA_GEMM='", text, "': expected cublas or tiled");
}

ConvAlgo parse_conv_algo(const std::string& text) {
    if (text == "cudnn") return ConvAlgo::Cudnn;
    if (text == "im2col") return ConvAlgo::Im2col;
    if (text == "implicit") return ConvAlgo::Implicit;
    GB_FAIL("GB_CUDA_CONV='", text, "': expected cudnn, im2col or implicit");
}

CudaBackend::CudaBackend(int device) : device_(device) {
    if (cudnn_built()) conv_algo_ = ConvAlgo::Cudnn;
    if (const char* e = std::getenv("GB_CUDA_GEMM"); e && *e) gemm_algo_ = parse_gemm_algo(e);
    if (const char* e = std::getenv("GB_CUDA_CONV"); e && *e) set_conv_algo(parse_conv_algo(e));
}

CudaBackend::~CudaBackend() {
    if (blas_) cublasDestroy(blas_);
}

void CudaBackend::set_conv_algo(ConvAlgo a) {
    GB_CHECK(a != ConvAlgo::Cudnn || cudnn_built(),
             "convolution by cuDNN requested, but this glassbox was built without it (GB_CUDNN=OFF or cuDNN not "
             "found); use GB_CUDA_CONV=im2col or implicit");
    conv_algo_ = a;
}

Device CudaBackend::device() const { return Device::cuda(device_); }

#if defined(__CUDACC__)
void CudaBackend::select_device() const {
    const cudaError_t err = cudaSetDevice(device_);
    GB_CHECK(err == cudaSuccess, "cudaSetDevice(", device_, ") failed: ", cudaGetErrorString(err));
}
#else
void CudaBackend::select_device() const {}  // the emulated device is the only one
#endif

GB_GPU_END

namespace gb::kernels {

// One backend per GPU, created on first use and never destroyed (cuBLAS
// handles must not outlive the CUDA runtime at exit).
Backend& cuda_backend(int device) {
    static std::mutex mutex;
    static auto& backends = *new std::vector<std::unique_ptr<gpu::CudaBackend>>();
    std::lock_guard lock(mutex);
    if (backends.size() <= static_cast<size_t>(device)) backends.resize(static_cast<size_t>(device) + 1);
    auto& b = backends[static_cast<size_t>(device)];
    if (!b) b = std::make_unique<gpu::CudaBackend>(device);
    return *b;
}

void set_cuda_algorithms(int device, const std::string& gemm, const std::string& conv) {
    auto& be = static_cast<gpu::CudaBackend&>(cuda_backend(device));
    be.set_gemm_algo(gpu::parse_gemm_algo(gemm));
    be.set_conv_algo(gpu::parse_conv_algo(conv));
}

bool cuda_cudnn_built() { return gpu::cudnn_built(); }

void register_cuda_backend() { register_backend(DeviceType::CUDA, cuda_backend); }

}  // namespace gb::kernels
