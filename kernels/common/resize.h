// Bilinear interpolation taps shared by the CPU and CUDA backends, after
// PyTorch's area_pixel_compute_scale / area_pixel_compute_source_index
// (aten/src/ATen/native/UpSample.h) and its linear index/lambda guards; and the
// antialiased (triangle-filter) window of PIL's ImagingResample, which
// torchvision's resize(antialias=True) reproduces.
#pragma once

#include <stdint.h>

#include "../../core/hd.h"

namespace gb::kernels {

// Source pixels per destination pixel along one axis.
// align_corners: (in - 1) / (out - 1), and 0 when out == 1; else in / out.
GB_HD inline float resize_scale(int64_t in, int64_t out, bool align_corners) {
    if (align_corners) return out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.f;
    return static_cast<float>(in) / static_cast<float>(out);
}

// Source coordinate of destination index `dst`: scale * dst (align_corners), else
// scale * (dst + 0.5) - 0.5 clamped below at 0.
GB_HD inline float resize_source_index(float scale, int64_t dst, bool align_corners) {
    if (align_corners) return scale * static_cast<float>(dst);
    const float src = scale * (static_cast<float>(dst) + 0.5f) - 0.5f;
    return src < 0.f ? 0.f : src;
}

// The two source taps of one destination index and their weights (w0 + w1 = 1).
struct LinearTaps {
    int64_t i0, i1;
    float w0, w1;
};

GB_HD inline LinearTaps linear_taps(int64_t in, int64_t out, bool align_corners, int64_t dst) {
    const float src = resize_source_index(resize_scale(in, out, align_corners), dst, align_corners);
    int64_t i0 = static_cast<int64_t>(src);
    if (i0 > in - 1) i0 = in - 1;
    float l = src - static_cast<float>(i0);
    l = l < 0.f ? 0.f : (l > 1.f ? 1.f : l);
    const int64_t i1 = i0 < in - 1 ? i0 + 1 : i0;
    return LinearTaps{i0, i1, 1.f - l, l};
}

// Antialiased linear resampling (PIL libImaging/Resample.c precompute_coeffs with the
// bilinear filter; torch's _upsample_bilinear2d_aa): destination index `dst` averages
// source pixels [first, first + count) with weights triangle((j + 0.5 - center) * invscale),
// normalised to sum 1. The filter's support (1 pixel) is scaled by the downscale
// factor, so downscaling averages every source pixel instead of point-sampling.
GB_HD inline double aa_triangle(double x) {
    x = x < 0.0 ? -x : x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

struct AaWindow {
    int64_t first, count;
    double center, invscale;
};

GB_HD inline AaWindow aa_window(int64_t in, int64_t out, int64_t dst) {
    const double scale = static_cast<double>(in) / static_cast<double>(out);
    const double support = scale >= 1.0 ? scale : 1.0;
    const double center = scale * (static_cast<double>(dst) + 0.5);
    int64_t first = static_cast<int64_t>(center - support + 0.5);
    if (first < 0) first = 0;
    int64_t last = static_cast<int64_t>(center + support + 0.5);
    if (last > in) last = in;
    return AaWindow{first, last - first, center, scale >= 1.0 ? 1.0 / scale : 1.0};
}

// Unnormalised weight of source pixel `src` (first <= src < first + count) in `w`.
GB_HD inline double aa_weight(const AaWindow& w, int64_t src) {
    return aa_triangle((static_cast<double>(src) - w.center + 0.5) * w.invscale);
}

}  // namespace gb::kernels
