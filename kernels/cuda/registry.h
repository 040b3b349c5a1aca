// The CUDA backend as the rest of glassbox reaches it (defined in
// kernels/cuda/cuda_backend.cuh; present in CUDA builds and in the emulated CUDA
// device's library, glassbox_cuda_emulated): the backend of one GPU, its
// registrar for backend_for() (kernels/registry.h), and its run-time algorithm
// choice for tests and benchmarks.
#pragma once

#include <string>

#include "../backend.h"

namespace gb::kernels {

Backend& cuda_backend(int device);
void register_cuda_backend();

// As GB_CUDA_GEMM / GB_CUDA_CONV: gemm "cublas" or "tiled"; conv "cudnn", "im2col"
// or "implicit". Raises gb::Error for unknown names and for cuDNN in a build without it.
void set_cuda_algorithms(int device, const std::string& gemm, const std::string& conv);
bool cuda_cudnn_built();

}  // namespace gb::kernels
