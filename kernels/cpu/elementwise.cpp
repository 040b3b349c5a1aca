// Element-wise primitives: fill, copy, ReLU, clamp, the LRP divide and sign
// mask, add/sub/mul/scale/axpy and the per-channel bias add. Plain contiguous loops (no __restrict: outputs may
// alias inputs exactly, e.g. add(n, a, b, a)) split into large chunks.
#include <algorithm>
#include <cstring>

#include "core/parallel.h"
#include "kernels/common/activation.h"
#include "kernels/common/lrp.h"
#include "kernels/cpu/cpu_backend.h"

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
        for (int64_t i = b; i < e; ++i) y[i] = relu(x[i]);
    });
}

void CpuBackend::relu_backward(int64_t n, const float* x, const float* dy, float* dx) {
    for_chunks(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) dx[i] = kernels::relu_backward(x[i], dy[i]);
    });
}

void CpuBackend::clamp(int64_t n, float lo, float hi, const float* x, float* out) {
    for_chunks(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) out[i] = clamp_value(x[i], lo, hi);
    });
}

void CpuBackend::lrp_divide(int64_t n, float eps, const float* r, const float* z, float* out) {
    for_chunks(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) out[i] = kernels::lrp_divide(r[i], z[i], eps);
    });
}

void CpuBackend::lrp_mask_sign(int64_t n, int sign, const float* z, const float* r, float* out) {
    for_chunks(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) out[i] = kernels::lrp_mask_sign(r[i], z[i], sign);
    });
}

void CpuBackend::add(int64_t n, const float* a, const float* b, float* out) {
    for_chunks(n, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) out[i] = a[i] + b[i];
    });
}

void CpuBackend::sub(int64_t n, const float* a, const float* b, float* out) {
    for_chunks(n, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) out[i] = a[i] - b[i];
    });
}

void CpuBackend::mul(int64_t n, const float* a, const float* b, float* out) {
    for_chunks(n, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) out[i] = a[i] * b[i];
    });
}

void CpuBackend::scale(int64_t n, float alpha, const float* x, float* out) {
    for_chunks(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) out[i] = alpha * x[i];
    });
}

void CpuBackend::axpy(int64_t n, float alpha, const float* x, float* y) {
    for_chunks(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) y[i] += alpha * x[i];
    });
}

void CpuBackend::bias_add(int64_t outer, int64_t channels, int64_t inner, const float* bias, float* y) {
    const int64_t rows = outer * channels;
    parallel_for(0, rows, std::max<int64_t>(1, cpu::kElementGrain / std::max<int64_t>(inner, 1)),
                 [&](int64_t r0, int64_t r1) {
                     for (int64_t r = r0; r < r1; ++r) {
                         const float v = bias[r % channels];
                         float* row = y + r * inner;
                         for (int64_t i = 0; i < inner; ++i) row[i] += v;
                     }
                 });
}

}  // namespace gb::kernels
