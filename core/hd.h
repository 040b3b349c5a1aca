// GB_HD marks element math that both the CPU and the CUDA backend compile:
// __host__ __device__ under nvcc, nothing for the host compiler.
#pragma once

#if defined(__CUDACC__)
#define GB_HD __host__ __device__
#else
#define GB_HD
#endif
