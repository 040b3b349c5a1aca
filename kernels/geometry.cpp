#include "kernels/geometry.h"

#include "core/error.h"

namespace gb::kernels {

namespace {
int64_t out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
    return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}
}  // namespace

Conv2dGeom make_conv2d_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S,
                            int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dil_h,
                            int64_t dil_w) {
    GB_CHECK(N >= 0 && C > 0 && H > 0 && W > 0 && K > 0, "conv2d: bad sizes N=", N, " C=", C, " H=", H, " W=", W,
             " K=", K);
    GB_CHECK(R > 0 && S > 0, "conv2d: kernel size must be positive, got ", R, "x", S);
    GB_CHECK(stride_h > 0 && stride_w > 0, "conv2d: stride must be positive, got ", stride_h, "x", stride_w);
    GB_CHECK(pad_h >= 0 && pad_w >= 0, "conv2d: padding must be >= 0, got ", pad_h, "x", pad_w);
    GB_CHECK(dil_h > 0 && dil_w > 0, "conv2d: dilation must be positive, got ", dil_h, "x", dil_w);
    Conv2dGeom g;
    g.N = N; g.C = C; g.H = H; g.W = W; g.K = K; g.R = R; g.S = S;
    g.stride_h = stride_h; g.stride_w = stride_w; g.pad_h = pad_h; g.pad_w = pad_w; g.dil_h = dil_h; g.dil_w = dil_w;
    g.P = out_size(H, R, stride_h, pad_h, dil_h);
    g.Q = out_size(W, S, stride_w, pad_w, dil_w);
    GB_CHECK(g.P > 0 && g.Q > 0, "conv2d: a ", R, "x", S, " kernel (dilation ", dil_h, "x", dil_w, ", padding ",
             pad_h, "x", pad_w, ") does not fit an input of ", H, "x", W);
    return g;
}

Pool2dGeom make_pool2d_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t stride_h,
                            int64_t stride_w, int64_t pad_h, int64_t pad_w, bool count_include_pad) {
    GB_CHECK(N >= 0 && C > 0 && H > 0 && W > 0, "pool2d: bad sizes N=", N, " C=", C, " H=", H, " W=", W);
    GB_CHECK(kh > 0 && kw > 0, "pool2d: kernel size must be positive, got ", kh, "x", kw);
    GB_CHECK(stride_h > 0 && stride_w > 0, "pool2d: stride must be positive, got ", stride_h, "x", stride_w);
    GB_CHECK(pad_h >= 0 && pad_w >= 0 && 2 * pad_h <= kh && 2 * pad_w <= kw,
             "pool2d: padding must be between 0 and half the kernel (", kh, "x", kw, "), got ", pad_h, "x", pad_w);
    Pool2dGeom g;
    g.N = N; g.C = C; g.H = H; g.W = W; g.kh = kh; g.kw = kw;
    g.stride_h = stride_h; g.stride_w = stride_w; g.pad_h = pad_h; g.pad_w = pad_w;
    g.count_include_pad = count_include_pad;
    g.P = out_size(H, kh, stride_h, pad_h, 1);
    g.Q = out_size(W, kw, stride_w, pad_w, 1);
    GB_CHECK(g.P > 0 && g.Q > 0, "pool2d: a ", kh, "x", kw, " window does not fit an input of ", H, "x", W);
    return g;
}

}  // namespace gb::kernels
