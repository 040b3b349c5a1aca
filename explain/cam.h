// The CAM family, through one forward hook (the layer's output A, [N, C, h, w])
// and one backward hook (its gradient g for the seeded output), as
// pytorch-grad-cam 1.5.5 computes them (the reference the tests match):
//   Grad-CAM    w_c = mean_hw g_c                                     (Selvaraju et al. 2017)
//   Grad-CAM++  w_c = sum_hw relu(g) a, a = g^2 / (2 g^2 + sum_hw(A) g^3 + 1e-6), a = 0 where g = 0
//                                                                     (Chattopadhyay et al. 2018)
//   XGrad-CAM   w_c = sum_hw g A / (sum_hw A + 1e-7)                  (Fu et al. 2020)
//   LayerCAM    cam = sum_c relu(g_c) A_c  (no channel weights)       (Jiang et al. 2021)
//   Score-CAM   w = softmax_c(score of the input masked by each channel's normalised,
//               upsampled map)                                        (Wang et al. 2020)
// raw = relu(sum_c w_c A_c); map = min-max normalised raw, resized (half-pixel
// bilinear) to the input size, clamped at 0 and min-max normalised again.
#pragma once

#include <string>
#include <vector>

#include "trace.h"

namespace gb::explain {

enum class CamMethod { GradCam, GradCamPlusPlus, XGradCam, LayerCam, ScoreCam };

struct CamResult {
    Tensor weights;  // [N, C] channel weights (undefined for LayerCAM)
    Tensor raw;      // [N, 1, h, w] at the layer's resolution, not normalised
    Tensor map;      // [N, 1, H, W] in [0, 1] at the input's resolution
};

struct CamOptions {
    int64_t score_batch = 64;  // masked inputs per forward pass (Score-CAM)
};

CamMethod parse_cam_method(const std::string& name);  // gradcam, gradcam++, xgradcam, layercam, scorecam
std::string cam_method_name(CamMethod m);

// The usual Grad-CAM layer: the output of the last Conv2d after its BatchNorm/ReLU
// (the rectified feature maps), or the Conv2d's own output when nothing follows it.
std::string default_cam_layer(const Trace& trace);

CamResult cam(const Trace& trace, CamMethod method, const std::string& layer, const Tensor& seed,
              const CamOptions& options = {});

// Bilinear resize of [N, C, h, w] maps to H x W (align_corners false: half-pixel, as
// F.interpolate and OpenCV's INTER_LINEAR; true: corners aligned, as UpsamplingBilinear2d).
Tensor resize_maps(const Tensor& maps, int64_t H, int64_t W, bool align_corners = false);

}  // namespace gb::explain
