// kernels/cpu/loops.h: element loops with per-instruction-set clones.
#include "kernels/cpu/loops.h"

#include <bit>

#include "kernels/common/activation.h"
#include "kernels/common/lrp.h"

// GCC on x86-64 ELF: one clone per listed target plus the default, chosen by
// an ifunc resolver at load time; callers see a plain declaration (loops.h).
// A build whose baseline is AVX2 or more (GB_NATIVE on such a machine) keeps
// the one version it compiles. Clang 14 (Debian 12's) gets target_clones wrong
// across translation units (a caller that sees the attribute calls the
// resolver, one that does not finds no symbol), so clang builds keep one
// baseline version too.
#if defined(__x86_64__) && defined(__ELF__) && !defined(__AVX2__) && !defined(__clang__) && defined(__GNUC__) && \
    __GNUC__ >= 8
#define GB_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GB_CPU_CLONES
#endif

namespace gb::kernels::cpu {

namespace {
// v where keep is all ones, +0 where it is 0: a bitwise and, which vectorises to
// plain loads and vpand (a select compiles to merge-masked loads that chain
// each iteration on the last).
inline float masked(float v, uint32_t keep) { return std::bit_cast<float>(std::bit_cast<uint32_t>(v) & keep); }
}  // namespace

GB_CPU_CLONES void relu_forward_n(int64_t n, const float* x, float* y) {
    for (int64_t i = 0; i < n; ++i) y[i] = relu(x[i]);
}

GB_CPU_CLONES void relu_backward_n(int64_t n, const float* x, const float* dy, float* dx) {
    for (int64_t i = 0; i < n; ++i) dx[i] = relu_backward(x[i], dy[i]);
}

GB_CPU_CLONES void clamp_n(int64_t n, float lo, float hi, const float* x, float* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = clamp_value(x[i], lo, hi);
}

GB_CPU_CLONES void lrp_divide_n(int64_t n, float eps, const float* r, const float* z, float* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = lrp_divide(r[i], z[i], eps);
}

GB_CPU_CLONES void lrp_mask_sign_n(int64_t n, int sign, const float* z, const float* r, float* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = lrp_mask_sign(r[i], z[i], sign);
}

GB_CPU_CLONES void add_n(int64_t n, const float* a, const float* b, float* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

GB_CPU_CLONES void sub_n(int64_t n, const float* a, const float* b, float* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] - b[i];
}

GB_CPU_CLONES void mul_n(int64_t n, const float* a, const float* b, float* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

GB_CPU_CLONES void scale_n(int64_t n, float alpha, const float* x, float* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = alpha * x[i];
}

GB_CPU_CLONES void axpy_n(int64_t n, float alpha, const float* x, float* y) {
    for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

GB_CPU_CLONES void add_scalar_n(int64_t n, float v, float* y) {
    for (int64_t i = 0; i < n; ++i) y[i] += v;
}

GB_CPU_CLONES void copy_masked_n(int64_t n, const float* __restrict src, const uint32_t* __restrict keep,
                                 float* __restrict dst) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) dst[j] = masked(src[j], keep[j]);
}

GB_CPU_CLONES void add_masked_n(int64_t n, const float* __restrict src, const uint32_t* __restrict keep,
                                float* __restrict dst) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) dst[j] += masked(src[j], keep[j]);
}

}  // namespace gb::kernels::cpu
