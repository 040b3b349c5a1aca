// Geometry of convolution and pooling windows, validated once on the host so
// kernels can trust their arguments. Output size follows PyTorch:
// out = floor((in + 2*pad - dilation*(k-1) - 1) / stride) + 1.
#pragma once

#include <cstdint>

#include "../core/hd.h"

namespace gb::kernels {

// Convolution, groups = 1: x [N,C,H,W] * w [K,C,R,S] -> y [N,K,P,Q].
struct Conv2dGeom {
    int64_t N = 0, C = 0, H = 0, W = 0;
    int64_t K = 0, R = 0, S = 0;
    int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
    int64_t P = 0, Q = 0;

    GB_HD int64_t x_numel() const { return N * C * H * W; }
    GB_HD int64_t w_numel() const { return K * C * R * S; }
    GB_HD int64_t y_numel() const { return N * K * P * Q; }
    GB_HD double flops() const { return 2.0 * N * K * P * Q * C * R * S; }
    // A 1x1 kernel with stride 1 and no padding: the image itself is its im2col matrix.
    GB_HD bool col_is_input() const {
        return R == 1 && S == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0;
    }
};

// Fills P and Q; raises gb::Error when the window does not fit or a parameter is invalid.
Conv2dGeom make_conv2d_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S,
                            int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dil_h = 1,
                            int64_t dil_w = 1);

// Pooling over each (n, c) plane: x [N,C,H,W] -> y [N,C,P,Q].
struct Pool2dGeom {
    int64_t N = 0, C = 0, H = 0, W = 0;
    int64_t kh = 1, kw = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
    int64_t P = 0, Q = 0;
    bool count_include_pad = true;  // average pooling only (PyTorch's default)

    GB_HD int64_t planes() const { return N * C; }
    GB_HD int64_t x_numel() const { return N * C * H * W; }
    GB_HD int64_t y_numel() const { return N * C * P * Q; }
};

// Raises gb::Error when pad > kernel/2 (PyTorch's rule) or the window does not fit.
Pool2dGeom make_pool2d_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t stride_h,
                            int64_t stride_w, int64_t pad_h, int64_t pad_w, bool count_include_pad = true);

}  // namespace gb::kernels
