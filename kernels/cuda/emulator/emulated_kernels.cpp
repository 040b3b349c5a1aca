// The CUDA backend's first translation unit (kernels/cuda/kernels.cu) compiled by
// the host compiler for the emulated CUDA device: compat.cuh then takes the
// emulator's launch and built-ins. The include list is kernels.cu's own.
#include "kernels/cuda/kernels.cu"
