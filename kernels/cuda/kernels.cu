// The CUDA backend's element-wise, reduction, softmax, pooling, batch-norm,
// resize and gradient-family kernels with their launchers (one translation unit
// keeps nvcc's time down).
#include "kernels/cuda/batchnorm.cuh"
#include "kernels/cuda/cuda_backend.cuh"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/gradient_family.cuh"
#include "kernels/cuda/pool.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/resize.cuh"
#include "kernels/cuda/softmax.cuh"
