// Element-wise primitives: fill, copy, ReLU, clamp, the LRP divide and sign
// mask, add/sub/mul/scale/axpy and the per-channel bias add: the loops of
// kernels/cpu/loops.h (per-ISA clones in portable builds) over large chunks.
#include <algorithm>
#include <cstring>

#include "core/parallel.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace gb::kernels {

namespace {
template <typename Fn>
void for_chunks(int64_t n, Fn&& fn) {
    parallel_for(0, n, cpu::kElementGrain, [&](int64_t b, int64_t e) { fn(b, e); });
}
}  // namespace

void CpuBackend::fill(int64_t n, float value, float* out) {
    for_chunks(n, [&](int64_t b, int64_t e) { std::fill(out + b, out + e, value); });
}

void CpuBackend::copy(int64_t n, const float* x, float* out) {
    if (x == out) return;
    for_chunks(n, [&](int64_t b, int64_t e) {
        std::memmove(out + b, x + b, static_cast<size_t>(e - b) * sizeof(float));
    });
}

void CpuBackend::relu_forward(int64_t n, const float* x, float* y) {
    for_chunks(n, [&](int64_t b, int64_t e) {
        cpu::relu_forward_n(e - b, x + b, y + b);
    });
}

void CpuBackend::relu_backward(int64_t n, const float* x, const float* dy, float* dx) {
    for_chunks(n, [&](int64_t b, int64_t e) {
        cpu::relu_backward_n(e - b, x + b, dy + b, dx + b);
    });
}

void CpuBackend::clamp(int64_t n, float lo, float hi, const float* x, float* out) {
    for_chunks(n, [&](int64_t b, int64_t e) {
        cpu::clamp_n(e - b, lo, hi, x + b, out + b);
    });
}

void CpuBackend::lrp_divide(int64_t n, float eps, const float* r, const float* z, float* out) {
    for_chunks(n, [&](int64_t b, int64_t e) {
        cpu::lrp_divide_n(e - b, eps, r + b, z + b, out + b);
    });
}

void CpuBackend::lrp_mask_sign(int64_t n, int sign, const float* z, const float* r, float* out) {
    for_chunks(n, [&](int64_t b, int64_t e) {
        cpu::lrp_mask_sign_n(e - b, sign, z + b, r + b, out + b);
    });
}

void CpuBackend::add(int64_t n, const float* a, const float* b, float* out) {
    for_chunks(n, [&](int64_t s, int64_t e) {
        cpu::add_n(e - s, a + s, b + s, out + s);
    });
}

void CpuBackend::sub(int64_t n, const float* a, const float* b, float* out) {
    for_chunks(n, [&](int64_t s, int64_t e) {
        cpu::sub_n(e - s, a + s, b + s, out + s);
    });
}

void CpuBackend::mul(int64_t n, const float* a, const float* b, float* out) {
    for_chunks(n, [&](int64_t s, int64_t e) {
        cpu::mul_n(e - s, a + s, b + s, out + s);
    });
}

void CpuBackend::scale(int64_t n, float alpha, const float* x, float* out) {
    for_chunks(n, [&](int64_t b, int64_t e) {
        cpu::scale_n(e - b, alpha, x + b, out + b);
    });
}

void CpuBackend::axpy(int64_t n, float alpha, const float* x, float* y) {
    for_chunks(n, [&](int64_t b, int64_t e) {
        cpu::axpy_n(e - b, alpha, x + b, y + b);
    });
}

void CpuBackend::bias_add(int64_t outer, int64_t channels, int64_t inner, const float* bias, float* y) {
    const int64_t rows = outer * channels;
    parallel_for(0, rows, std::max<int64_t>(1, cpu::kElementGrain / std::max<int64_t>(inner, 1)),
                 [&](int64_t r0, int64_t r1) {
                     for (int64_t r = r0; r < r1; ++r) {
                         cpu::add_scalar_n(inner, bias[r % channels], y + r * inner);
                     }
                 });
}

}  // namespace gb::kernels
