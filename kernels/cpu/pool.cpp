// Max, average and adaptive-average pooling over each (n, c) plane, after
// PyTorch's CPU kernels (aten/src/ATen/native/cpu/{Max,Avg,AdaptiveAvg}PoolKernel.cpp).
// Planes are independent, so every kernel (backwards included) splits planes
// over threads.
#include <algorithm>
#include <cmath>

#include "core/parallel.h"
#include "kernels/common/pool.h"
#include "kernels/cpu/cpu_backend.h"

namespace gb::kernels {

namespace {

template <typename Fn>
void for_planes(int64_t planes, int64_t work_per_plane, Fn&& fn) {
    parallel_for(0, planes, std::max<int64_t>(1, cpu::kElementGrain / std::max<int64_t>(work_per_plane, 1)),
                 [&](int64_t p0, int64_t p1) {
                     for (int64_t p = p0; p < p1; ++p) fn(p);
                 });
}

// v replaces the running maximum when strictly greater (the first maximum
// wins) or when it is the first NaN (PyTorch propagates NaN).
inline void take_max(float v, int32_t vi, float& best, int32_t& best_i) {
    const bool t = v > best || (std::isnan(v) && !std::isnan(best));
    best = t ? v : best;
    best_i = t ? vi : best_i;
}

// Outputs [q0, q0 + L) of one output row of a 2x2 stride-2 window: a loop of
// compile-time length that the compiler turns into a few vector operations.
template <int64_t L>
inline void maxpool2x2_run(const float* __restrict r0, const float* __restrict r1, int32_t i0, int32_t i1,
                           int64_t q0, float* __restrict yr, int32_t* __restrict ir) {
    for (int64_t q = q0; q < q0 + L; ++q) {
        const auto c = static_cast<int32_t>(2 * q);
        float best = r0[2 * q];
        int32_t best_i = i0 + c;
        take_max(r0[2 * q + 1], i0 + c + 1, best, best_i);
        take_max(r1[2 * q], i1 + c, best, best_i);
        take_max(r1[2 * q + 1], i1 + c + 1, best, best_i);
        yr[q] = best;
        ir[q] = best_i;
    }
}

// One output row in runs of L; the last run is moved back to end at Q, so it may
// recompute a few outputs of the previous run (same inputs, same result).
template <int64_t L>
void maxpool2x2_row(const float* r0, const float* r1, int32_t i0, int32_t i1, int64_t Q, float* yr, int32_t* ir) {
    for (int64_t q0 = 0; q0 < Q; q0 += L) maxpool2x2_run<L>(r0, r1, i0, i1, std::min(q0, Q - L), yr, ir);
}

// The VGG case, 2x2 windows with stride 2 and no padding: branch-free runs of 16
// or 8 outputs (rows narrower than 8 outputs run one by one).
void maxpool2x2(const Pool2dGeom& g, const float* xp, float* yp, int32_t* ip) {
    for (int64_t p = 0; p < g.P; ++p) {
        const float* r0 = xp + 2 * p * g.W;
        const float* r1 = r0 + g.W;
        const auto i0 = static_cast<int32_t>(2 * p * g.W), i1 = static_cast<int32_t>(i0 + g.W);
        float* yr = yp + p * g.Q;
        int32_t* ir = ip + p * g.Q;
        if (g.Q >= 16)
            maxpool2x2_row<16>(r0, r1, i0, i1, g.Q, yr, ir);
        else if (g.Q >= 8)
            maxpool2x2_row<8>(r0, r1, i0, i1, g.Q, yr, ir);
        else
            for (int64_t q = 0; q < g.Q; ++q) maxpool2x2_run<1>(r0, r1, i0, i1, q, yr, ir);
    }
}

// 2x2 stride-2 pooling of small planes (rows of fewer than 8 outputs, at most
// kSmallOutputs per plane: the deep maps of VGG) in runs of 16 outputs across
// rows and planes. The even and odd input rows of a group of planes are first
// copied apart (E, O: [plane][p][2Q]), so output o of the group reads E[2o],
// E[2o + 1], O[2o], O[2o + 1], whose indices in their plane are base[o] + {0, 1, W, W + 1}.
constexpr int64_t kSmallOutputs = 256;

inline void maxpool2x2_small_run(const float* __restrict E, const float* __restrict O, const int32_t* __restrict base,
                                 int64_t W, int64_t o, float* __restrict y, int32_t* __restrict idx) {
    const auto w = static_cast<int32_t>(W);
    float best = E[2 * o];
    int32_t best_i = base[o];
    take_max(E[2 * o + 1], base[o] + 1, best, best_i);
    take_max(O[2 * o], base[o] + w, best, best_i);
    take_max(O[2 * o + 1], base[o] + w + 1, best, best_i);
    y[o] = best;
    idx[o] = best_i;
}

// Q (< 8) is a template parameter so that the row copies have a fixed length.
template <int64_t Q>
void maxpool2x2_small(const Pool2dGeom& g, const float* x, float* y, int32_t* idx) {
    constexpr int64_t Q2 = 2 * Q;
    const int64_t PQ = g.P * Q, HW = g.H * g.W;
    const int64_t group = std::max<int64_t>(1, kSmallOutputs / PQ), groups = (g.planes() + group - 1) / group;
    parallel_for(0, groups, std::max<int64_t>(1, cpu::kElementGrain / (group * HW)), [&](int64_t t0, int64_t t1) {
        alignas(64) float E[2 * kSmallOutputs], O[2 * kSmallOutputs];
        alignas(64) int32_t base[kSmallOutputs];
        for (int64_t o = 0; o < group * PQ; ++o) {
            const int64_t in = o % PQ;
            base[o] = static_cast<int32_t>(2 * (in / Q) * g.W + 2 * (in % Q));
        }
        for (int64_t t = t0; t < t1; ++t) {
            const int64_t pl0 = t * group, planes = std::min(group, g.planes() - pl0), n = planes * PQ;
            for (int64_t i = 0; i < planes * g.P; ++i) {  // row pair i: plane i / P, output row i % P
                const float* r0 = x + (pl0 + i / g.P) * HW + 2 * (i % g.P) * g.W;
                for (int64_t k = 0; k < Q2; ++k) E[i * Q2 + k] = r0[k];
                for (int64_t k = 0; k < Q2; ++k) O[i * Q2 + k] = r0[g.W + k];
            }
            float* yg = y + pl0 * PQ;
            int32_t* ig = idx + pl0 * PQ;
            if (n < 16) {
                for (int64_t o = 0; o < n; ++o) maxpool2x2_small_run(E, O, base, g.W, o, yg, ig);
                continue;
            }
            for (int64_t o0 = 0; o0 < n; o0 += 16) {  // the last run moved back to end at n
                const int64_t start = std::min(o0, n - 16);
                for (int64_t o = start; o < start + 16; ++o) maxpool2x2_small_run(E, O, base, g.W, o, yg, ig);
            }
        }
    });
}

// maxpool2x2_small for the Q of g (1..7).
template <int64_t Q = 1>
void maxpool2x2_small_dispatch(const Pool2dGeom& g, const float* x, float* y, int32_t* idx) {
    if constexpr (Q < 7)
        if (g.Q != Q) return maxpool2x2_small_dispatch<Q + 1>(g, x, y, idx);
    maxpool2x2_small<Q>(g, x, y, idx);
}

}  // namespace

void CpuBackend::maxpool2d_forward(const Pool2dGeom& g, const float* x, float* y, int32_t* indices) {
    if (g.kh == 2 && g.kw == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 && g.pad_w == 0) {
        if (g.Q < 8 && g.P * g.Q <= kSmallOutputs) return maxpool2x2_small_dispatch(g, x, y, indices);
        for_planes(g.planes(), g.H * g.W, [&](int64_t pl) {
            maxpool2x2(g, x + pl * g.H * g.W, y + pl * g.P * g.Q, indices + pl * g.P * g.Q);
        });
        return;
    }
    for_planes(g.planes(), g.P * g.Q * g.kh * g.kw, [&](int64_t pl) {
        const float* xp = x + pl * g.H * g.W;
        float* yp = y + pl * g.P * g.Q;
        int32_t* ip = indices + pl * g.P * g.Q;
        for (int64_t p = 0; p < g.P; ++p) {
            const Span hs = pool_window(p, g.stride_h, g.pad_h, g.kh, g.H);
            for (int64_t q = 0; q < g.Q; ++q) {
                const Span ws = pool_window(q, g.stride_w, g.pad_w, g.kw, g.W);
                // Padding is -inf, so the first real tap starts the search.
                int64_t best_i = hs.start * g.W + ws.start;
                float best = -INFINITY;
                int32_t bi = static_cast<int32_t>(best_i);
                for (int64_t h = hs.start; h < hs.end; ++h)
                    for (int64_t w = ws.start; w < ws.end; ++w)
                        take_max(xp[h * g.W + w], static_cast<int32_t>(h * g.W + w), best, bi);
                yp[p * g.Q + q] = best;
                ip[p * g.Q + q] = bi;
            }
        }
    });
}

void CpuBackend::maxpool2d_backward(const Pool2dGeom& g, const float* dy, const int32_t* indices, float* dx) {
    for_planes(g.planes(), g.H * g.W + g.P * g.Q, [&](int64_t pl) {
        float* dp = dx + pl * g.H * g.W;
        std::fill(dp, dp + g.H * g.W, 0.f);
        const float* gp = dy + pl * g.P * g.Q;
        const int32_t* ip = indices + pl * g.P * g.Q;
        for (int64_t o = 0; o < g.P * g.Q; ++o) dp[ip[o]] += gp[o];
    });
}

void CpuBackend::avgpool2d_forward(const Pool2dGeom& g, const float* x, float* y) {
    for_planes(g.planes(), g.P * g.Q * g.kh * g.kw, [&](int64_t pl) {
        const float* xp = x + pl * g.H * g.W;
        float* yp = y + pl * g.P * g.Q;
        for (int64_t p = 0; p < g.P; ++p) {
            const Span hs = pool_window(p, g.stride_h, g.pad_h, g.kh, g.H);
            for (int64_t q = 0; q < g.Q; ++q) {
                const Span ws = pool_window(q, g.stride_w, g.pad_w, g.kw, g.W);
                float s = 0.f;
                for (int64_t h = hs.start; h < hs.end; ++h)
                    for (int64_t w = ws.start; w < ws.end; ++w) s += xp[h * g.W + w];
                yp[p * g.Q + q] = s / avg_divisor(g, p, q);
            }
        }
    });
}

void CpuBackend::avgpool2d_backward(const Pool2dGeom& g, const float* dy, float* dx) {
    for_planes(g.planes(), g.H * g.W + g.P * g.Q * g.kh * g.kw, [&](int64_t pl) {
        float* dp = dx + pl * g.H * g.W;
        std::fill(dp, dp + g.H * g.W, 0.f);
        const float* gp = dy + pl * g.P * g.Q;
        for (int64_t p = 0; p < g.P; ++p) {
            const Span hs = pool_window(p, g.stride_h, g.pad_h, g.kh, g.H);
            for (int64_t q = 0; q < g.Q; ++q) {
                const Span ws = pool_window(q, g.stride_w, g.pad_w, g.kw, g.W);
                const float v = gp[p * g.Q + q] / avg_divisor(g, p, q);
                for (int64_t h = hs.start; h < hs.end; ++h)
                    for (int64_t w = ws.start; w < ws.end; ++w) dp[h * g.W + w] += v;
            }
        }
    });
}

void CpuBackend::adaptive_avgpool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q,
                                            const float* x, float* y) {
    for_planes(planes, H * W + P * Q, [&](int64_t pl) {
        const float* xp = x + pl * H * W;
        float* yp = y + pl * P * Q;
        for (int64_t p = 0; p < P; ++p) {
            const Span hs = adaptive_window(p, H, P);
            for (int64_t q = 0; q < Q; ++q) {
                const Span ws = adaptive_window(q, W, Q);
                float s = 0.f;
                for (int64_t h = hs.start; h < hs.end; ++h)
                    for (int64_t w = ws.start; w < ws.end; ++w) s += xp[h * W + w];
                yp[p * Q + q] = s / static_cast<float>((hs.end - hs.start) * (ws.end - ws.start));
            }
        }
    });
}

void CpuBackend::adaptive_avgpool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q,
                                             const float* dy, float* dx) {
    for_planes(planes, H * W + P * Q, [&](int64_t pl) {
        float* dp = dx + pl * H * W;
        std::fill(dp, dp + H * W, 0.f);
        const float* gp = dy + pl * P * Q;
        for (int64_t p = 0; p < P; ++p) {
            const Span hs = adaptive_window(p, H, P);
            for (int64_t q = 0; q < Q; ++q) {
                const Span ws = adaptive_window(q, W, Q);
                const float v = gp[p * Q + q] / static_cast<float>((hs.end - hs.start) * (ws.end - ws.start));
                for (int64_t h = hs.start; h < hs.end; ++h)
                    for (int64_t w = ws.start; w < ws.end; ++w) dp[h * W + w] += v;
            }
        }
    });
}

}  // namespace gb::kernels
