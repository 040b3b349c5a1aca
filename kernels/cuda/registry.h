// The CUDA backend as the rest of glassbox reaches it (CUDA builds only; defined
// in kernels/cuda/cuda_backend.cuh): the backend of one GPU for backend_for(),
// and its run-time algorithm choice for tests and benchmarks.
#pragma once

#include <string>

#include "kernels/backend.h"

namespace gb::kernels {

Backend& cuda_backend(int device);

// As GB_CUDA_GEMM / GB_CUDA_CONV: gemm "cublas" or "tiled"; conv "cudnn", "im2col"
// or "implicit". Raises gb::Error for unknown names and for cuDNN in a build without it.
void set_cuda_algorithms(int device, const std::string& gemm, const std::string& conv);
bool cuda_cudnn_built();

}  // namespace gb::kernels
