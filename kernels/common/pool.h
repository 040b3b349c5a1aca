// Pooling window arithmetic shared by the CPU and CUDA backends, after PyTorch's
// pooling kernels (aten/src/ATen/native/cpu/{Max,Avg,AdaptiveAvg}PoolKernel.cpp).
#pragma once

#include <stdint.h>

#include "../../core/hd.h"
#include "../geometry.h"

namespace gb::kernels {

// Window [start, end) of an output index clipped to [0, in).
struct Span {
    int64_t start, end;
};

GB_HD inline Span pool_window(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t in) {
    const int64_t s = o * stride - pad;
    return Span{s < 0 ? 0 : s, s + k < in ? s + k : in};
}

// Adaptive window of output index i: [floor(i*in/out), ceil((i+1)*in/out)).
GB_HD inline Span adaptive_window(int64_t i, int64_t in, int64_t out) {
    return Span{(i * in) / out, ((i + 1) * in + out - 1) / out};
}

// Average-pool divisor: the padded window size (kh*kw here, as windows never
// pass the padding without ceil_mode) with count_include_pad, else the real taps.
GB_HD inline float avg_divisor(const Pool2dGeom& g, int64_t p, int64_t q) {
    if (g.count_include_pad) {
        const int64_t h0 = p * g.stride_h - g.pad_h, w0 = q * g.stride_w - g.pad_w;
        const int64_t h1 = h0 + g.kh < g.H + g.pad_h ? h0 + g.kh : g.H + g.pad_h;
        const int64_t w1 = w0 + g.kw < g.W + g.pad_w ? w0 + g.kw : g.W + g.pad_w;
        return static_cast<float>((h1 - h0) * (w1 - w0));
    }
    const Span hs = pool_window(p, g.stride_h, g.pad_h, g.kh, g.H), ws = pool_window(q, g.stride_w, g.pad_w, g.kw, g.W);
    return static_cast<float>((hs.end - hs.start) * (ws.end - ws.start));
}

// Output indices [first, last] whose window (stride, pad, k) may contain input
// index h, clipped to [0, out). Empty when first > last.
struct OutRange {
    int64_t first, last;
};
GB_HD inline OutRange windows_containing(int64_t h, int64_t stride, int64_t pad, int64_t k, int64_t out) {
    const int64_t lo_num = h + pad - k + 1;
    const int64_t first = lo_num <= 0 ? 0 : (lo_num + stride - 1) / stride;
    const int64_t hi = (h + pad) / stride;
    return OutRange{first, hi < out - 1 ? hi : out - 1};
}

// Adaptive outputs whose window contains input index h (each still to be checked with adaptive_window).
GB_HD inline OutRange adaptive_windows_containing(int64_t h, int64_t in, int64_t out) {
    const int64_t last = ((h + 1) * out - 1) / in;
    return OutRange{(h * out) / in, last < out - 1 ? last : out - 1};
}

}  // namespace gb::kernels
