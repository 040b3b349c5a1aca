// Convolution passes for maps that every window covers whole; see conv_whole_map.h.
#include "kernels/cpu/conv_whole_map.h"

#include <algorithm>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/gemm.h"

namespace gb::kernels::cpu {

namespace {

constexpr int64_t kWholeMapMinImages = 8;
constexpr int64_t kWholeMapMaxFloats = int64_t{1} << 24;  // wm at most 64 MiB

// taps[pq * HW + hw]: the tap r*S + s of w that joins output pixel pq to input pixel hw.
std::vector<int64_t> whole_map_taps(const Conv2dGeom& g) {
    const int64_t PQ = g.P * g.Q, HW = g.H * g.W;
    std::vector<int64_t> taps(static_cast<size_t>(PQ * HW));
    for (int64_t pq = 0; pq < PQ; ++pq)
        for (int64_t hw = 0; hw < HW; ++hw) {
            const int64_t r = hw / g.W - pq / g.Q * g.stride_h + g.pad_h, s = hw % g.W - pq % g.Q * g.stride_w + g.pad_w;
            taps[static_cast<size_t>(pq * HW + hw)] = r * g.S + s;
        }
    return taps;
}

// wm (conv_whole_map.h) in scratch, rows split over the threads.
const float* whole_map_weight(const Conv2dGeom& g, const float* w) {
    const int64_t PQ = g.P * g.Q, HW = g.H * g.W, KPQ = g.K * PQ, CHW = g.C * HW, CRS = g.C * g.R * g.S;
    const std::vector<int64_t> taps = whole_map_taps(g);
    const int64_t* tp = taps.data();
    float* wm = scratch(Scratch::Weight, static_cast<size_t>(KPQ * CHW));
    // Row k*PQ + pq: for every c, the HW taps of w[k][c] that output pixel pq
    // meets, as HW strided copies (long loops rather than HW-long ones).
    parallel_for(0, KPQ, std::max<int64_t>(1, kElementGrain / CHW), [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            const int64_t* t = tp + i % PQ * HW;
            float* __restrict out = wm + i * CHW;
            for (int64_t hw = 0; hw < HW; ++hw) {
                const float* __restrict wt = w + i / PQ * CRS + t[hw];
                for (int64_t c = 0; c < g.C; ++c) out[c * HW + hw] = wt[c * g.R * g.S];
            }
        }
    });
    return wm;
}

}  // namespace

bool whole_map(const Conv2dGeom& g) {
    const auto covers = [](int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad) {
        return pad - (out - 1) * stride >= 0 && in - 1 + pad <= k - 1;  // every tap h - p*stride + pad in [0, k)
    };
    return g.N >= kWholeMapMinImages && g.dil_h == 1 && g.dil_w == 1 && covers(g.H, g.P, g.R, g.stride_h, g.pad_h) &&
           covers(g.W, g.Q, g.S, g.stride_w, g.pad_w) && g.K * g.P * g.Q * g.C * g.H * g.W <= kWholeMapMaxFloats;
}

void whole_map_forward(const Conv2dGeom& g, const float* x, const float* w, const float* bias, bool relu, float* y) {
    const int64_t PQ = g.P * g.Q, CHW = g.C * g.H * g.W;
    const float* wm = whole_map_weight(g, w);
    GemmEpilogue ep;
    ep.relu = relu;
    if (bias) {
        float* b = scratch(Scratch::Row, static_cast<size_t>(g.K * PQ));
        for (int64_t i = 0; i < g.K * PQ; ++i) b[i] = bias[i / PQ];
        ep.col_bias = b;
    }
    gemm_ex(false, true, g.N, g.K * PQ, CHW, 1.f, x, CHW, wm, CHW, 0.f, y, g.K * PQ, ep);
}

void whole_map_backward_data(const Conv2dGeom& g, const float* dy, const float* w, float* dx) {
    const int64_t KPQ = g.K * g.P * g.Q, CHW = g.C * g.H * g.W;
    gemm_ex(false, false, g.N, CHW, KPQ, 1.f, dy, KPQ, whole_map_weight(g, w), CHW, 0.f, dx, CHW,
                 GemmEpilogue{});
}

void whole_map_backward_weight(const Conv2dGeom& g, const float* x, const float* dy, float* dw) {
    const int64_t PQ = g.P * g.Q, HW = g.H * g.W, KPQ = g.K * PQ, CHW = g.C * HW, CRS = g.C * g.R * g.S;
    float* dwm = scratch(Scratch::Partial, static_cast<size_t>(KPQ * CHW));
    gemm_ex(true, false, KPQ, CHW, g.N, 1.f, dy, KPQ, x, CHW, 0.f, dwm, CHW, GemmEpilogue{});
    // Each tap of w[k] sums the wm entries it was copied to, in a fixed order
    // (taps that only ever meet padding get 0).
    const std::vector<int64_t> taps = whole_map_taps(g);
    parallel_for(0, g.K, std::max<int64_t>(1, kElementGrain / (PQ * CHW)), [&](int64_t k0, int64_t k1) {
        for (int64_t k = k0; k < k1; ++k) {
            float* dwk = dw + k * CRS;
            std::fill(dwk, dwk + CRS, 0.f);
            for (int64_t pq = 0; pq < PQ; ++pq)
                for (int64_t hw = 0; hw < HW; ++hw) {
                    const float* __restrict row = dwm + (k * PQ + pq) * CHW + hw;
                    float* __restrict d = dwk + taps[static_cast<size_t>(pq * HW + hw)];
                    for (int64_t c = 0; c < g.C; ++c) d[c * g.R * g.S] += row[c * HW];
                }
        }
    });
}

}  // namespace gb::kernels::cpu
