// The CUDA backend's GEMM (cuBLAS / tiled) and convolution (cuDNN / im2col /
// implicit GEMM), in a translation unit of their own beside kernels.cu.
#include "kernels/cuda/conv.cuh"
#include "kernels/cuda/gemm.cuh"
