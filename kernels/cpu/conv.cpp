// 2-D convolution (groups = 1) as im2col + GEMM (Chellapilla et al. 2006; the
// scheme of Caffe and PyTorch's slow_conv2d). Per image n, col[C*R*S, P*Q]
// holds the input taps of every output pixel, so
//   forward:          y[n] = w[K, CRS] * col   (+ bias, in the GEMM's epilogue)
//   backward-data:    dcol = w^T * dy[n], then col2im adds dcol into dx[n]
//   backward-weight:  dw   = sum_n dy[n] * col^T,  dbias = sum of dy over N, P, Q.
// 1x1 kernels with stride 1 and no padding use the input itself as col. With at
// least as many images as threads, images are spread over threads (the GEMM
// then runs inline in each); otherwise images run in turn with a threaded GEMM.
#include <algorithm>

#include "core/parallel.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/gemm.h"

namespace gb::kernels {

namespace {

bool col_is_input(const Conv2dGeom& g) {
    return g.R == 1 && g.S == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0;
}

bool split_batch(const Conv2dGeom& g) { return num_threads() > 1 && g.N >= num_threads(); }

// Output columns q whose input column q*stride + off lies in [0, W).
struct QRange {
    int64_t lo, hi;
};
QRange valid_q(int64_t off, int64_t stride, int64_t W, int64_t Q) {
    const int64_t lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
    const int64_t hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / stride + 1;
    const int64_t l = std::min(lo, Q), h = std::min(hi, Q);
    return QRange{l, std::max(l, h)};
}

// col[(c*R + r)*S + s, p*Q + q] = x[c, p*sh - ph + r*dh, q*sw - pw + s*dw], 0 in the padding.
void im2col(const Conv2dGeom& g, const float* x, float* col) {
    const int64_t RS = g.R * g.S, PQ = g.P * g.Q;
    parallel_for(0, g.C * RS, std::max<int64_t>(1, cpu::kElementGrain / PQ), [&](int64_t r0, int64_t r1) {
        for (int64_t row = r0; row < r1; ++row) {
            const int64_t c = row / RS, r = (row / g.S) % g.R, s = row % g.S;
            const int64_t off_w = s * g.dil_w - g.pad_w;
            const QRange qr = valid_q(off_w, g.stride_w, g.W, g.Q);
            for (int64_t p = 0; p < g.P; ++p) {
                float* dst = col + row * PQ + p * g.Q;
                const int64_t h = p * g.stride_h - g.pad_h + r * g.dil_h;
                if (h < 0 || h >= g.H) {
                    std::fill(dst, dst + g.Q, 0.f);
                    continue;
                }
                const float* src = x + (c * g.H + h) * g.W;
                std::fill(dst, dst + qr.lo, 0.f);
                if (g.stride_w == 1)
                    std::copy(src + qr.lo + off_w, src + qr.hi + off_w, dst + qr.lo);
                else
                    for (int64_t q = qr.lo; q < qr.hi; ++q) dst[q] = src[q * g.stride_w + off_w];
                std::fill(dst + qr.hi, dst + g.Q, 0.f);
            }
        }
    });
}

// dx[c, h, w] = sum of the col entries that im2col read from (c, h, w).
void col2im(const Conv2dGeom& g, const float* col, float* dx) {
    const int64_t RS = g.R * g.S, PQ = g.P * g.Q;
    parallel_for(0, g.C, std::max<int64_t>(1, cpu::kElementGrain / (RS * PQ)), [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
            float* plane = dx + c * g.H * g.W;
            std::fill(plane, plane + g.H * g.W, 0.f);
            for (int64_t rs = 0; rs < RS; ++rs) {
                const int64_t r = rs / g.S, s = rs % g.S, row = c * RS + rs;
                const int64_t off_w = s * g.dil_w - g.pad_w;
                const QRange qr = valid_q(off_w, g.stride_w, g.W, g.Q);
                for (int64_t p = 0; p < g.P; ++p) {
                    const int64_t h = p * g.stride_h - g.pad_h + r * g.dil_h;
                    if (h < 0 || h >= g.H) continue;
                    const float* src = col + row * PQ + p * g.Q;
                    float* dst = plane + h * g.W;
                    if (g.stride_w == 1)
                        for (int64_t q = qr.lo; q < qr.hi; ++q) dst[q + off_w] += src[q];
                    else
                        for (int64_t q = qr.lo; q < qr.hi; ++q) dst[q * g.stride_w + off_w] += src[q];
                }
            }
        }
    });
}

template <typename Fn>
void for_images(const Conv2dGeom& g, Fn&& fn) {
    if (split_batch(g)) {
        parallel_for(0, g.N, 1, [&](int64_t n0, int64_t n1) {
            for (int64_t n = n0; n < n1; ++n) fn(n);
        });
    } else {
        for (int64_t n = 0; n < g.N; ++n) fn(n);
    }
}

}  // namespace

void CpuBackend::conv2d_forward(const Conv2dGeom& g, const float* x, const float* w, const float* bias, float* y) {
    const int64_t CRS = g.C * g.R * g.S, PQ = g.P * g.Q;
    const bool direct = col_is_input(g);
    for_images(g, [&](int64_t n) {
        const float* xn = x + n * g.C * g.H * g.W;
        float* yn = y + n * g.K * PQ;
        const float* col = xn;
        if (!direct) {
            float* buf = cpu::scratch(cpu::Scratch::Col, static_cast<size_t>(CRS * PQ));
            im2col(g, xn, buf);
            col = buf;
        }
        cpu::GemmEpilogue ep;
        ep.row_bias = bias;  // added as each tile of y is stored
        cpu::gemm_ex(false, false, g.K, PQ, CRS, 1.f, w, CRS, col, PQ, 0.f, yn, PQ, ep);
    });
}

void CpuBackend::conv2d_backward_data(const Conv2dGeom& g, const float* dy, const float* w, float* dx) {
    const int64_t CRS = g.C * g.R * g.S, PQ = g.P * g.Q;
    const bool direct = col_is_input(g);
    for_images(g, [&](int64_t n) {
        float* dxn = dx + n * g.C * g.H * g.W;
        float* dcol = direct ? dxn : cpu::scratch(cpu::Scratch::Col, static_cast<size_t>(CRS * PQ));
        gemm(true, false, CRS, PQ, g.K, 1.f, w, CRS, dy + n * g.K * PQ, PQ, 0.f, dcol, PQ);
        if (!direct) col2im(g, dcol, dxn);
    });
}

void CpuBackend::conv2d_backward_weight(const Conv2dGeom& g, const float* x, const float* dy, float* dw,
                                        float* dbias) {
    const int64_t CRS = g.C * g.R * g.S, PQ = g.P * g.Q, KCRS = g.K * CRS;
    const bool direct = col_is_input(g);
    // dw (+)= dy[n] [K, PQ] * col(n)^T, col(n) [CRS, PQ].
    auto accumulate = [&](int64_t n, float beta, float* out) {
        const float* xn = x + n * g.C * g.H * g.W;
        const float* col = xn;
        if (!direct) {
            float* buf = cpu::scratch(cpu::Scratch::Col, static_cast<size_t>(CRS * PQ));
            im2col(g, xn, buf);
            col = buf;
        }
        gemm(false, true, g.K, CRS, PQ, 1.f, dy + n * g.K * PQ, PQ, col, PQ, beta, out, CRS);
    };
    if (g.N == 0) {
        fill(KCRS, 0.f, dw);
    } else if (split_batch(g)) {
        // One partial dw per slot (slot s takes images s, s + slots, ...), then a fixed-order sum.
        const int64_t slots = std::min<int64_t>(num_threads(), g.N);
        float* partial = cpu::scratch(cpu::Scratch::Partial, static_cast<size_t>(slots * KCRS));
        parallel_for(0, slots, 1, [&](int64_t s0, int64_t s1) {
            for (int64_t s = s0; s < s1; ++s)
                for (int64_t n = s; n < g.N; n += slots) accumulate(n, n == s ? 0.f : 1.f, partial + s * KCRS);
        });
        parallel_for(0, KCRS, cpu::kElementGrain, [&](int64_t i0, int64_t i1) {
            for (int64_t i = i0; i < i1; ++i) {
                float v = partial[i];
                for (int64_t s = 1; s < slots; ++s) v += partial[s * KCRS + i];
                dw[i] = v;
            }
        });
    } else {
        for (int64_t n = 0; n < g.N; ++n) accumulate(n, n == 0 ? 0.f : 1.f, dw);
    }
    if (dbias) bias_grad(g.N, g.K, PQ, dy, dbias);
}

}  // namespace gb::kernels
