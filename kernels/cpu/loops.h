// The CPU backend's element loops over contiguous floats. In portable builds
// (GB_NATIVE off) each is compiled for AVX-512, for AVX2 and for baseline
// x86-64 and the best the CPU has is chosen when the program loads
// (target_clones in GCC builds; kernels/cpu/loops.cpp), as the GEMM micro-kernels are: a
// portable build runs these loops as a native one does. No clone enables FMA,
// so every clone gives the same floats as the baseline code.
// No __restrict: outputs may alias inputs exactly (e.g. add_n(n, a, b, a)), except
// in the masked loops, whose rows never overlap.
#pragma once

#include <cstdint>

namespace gb::kernels::cpu {

void relu_forward_n(int64_t n, const float* x, float* y);
void relu_backward_n(int64_t n, const float* x, const float* dy, float* dx);
void clamp_n(int64_t n, float lo, float hi, const float* x, float* out);
void lrp_divide_n(int64_t n, float eps, const float* r, const float* z, float* out);
void lrp_mask_sign_n(int64_t n, int sign, const float* z, const float* r, float* out);
void add_n(int64_t n, const float* a, const float* b, float* out);
void sub_n(int64_t n, const float* a, const float* b, float* out);
void mul_n(int64_t n, const float* a, const float* b, float* out);
void scale_n(int64_t n, float alpha, const float* x, float* out);
void axpy_n(int64_t n, float alpha, const float* x, float* y);  // y += alpha * x
void add_scalar_n(int64_t n, float v, float* y);                 // y += v
// dst[j] = src[j] where keep[j] is all ones, +0 where it is 0 (a bit mask, not a select).
void copy_masked_n(int64_t n, const float* src, const uint32_t* keep, float* dst);
// dst[j] += src[j] masked likewise.
void add_masked_n(int64_t n, const float* src, const uint32_t* keep, float* dst);

}  // namespace gb::kernels::cpu
