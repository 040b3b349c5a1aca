// The CUDA backend's GEMM and convolution translation unit (kernels/cuda/linalg.cu)
// compiled by the host compiler for the emulated CUDA device (see emulated_kernels.cpp).
#include "kernels/cuda/linalg.cu"
