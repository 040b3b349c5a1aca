// SLIC superpixels (Achanta et al. 2012): k-means in (colour, position) space
// restricted to a 2S x 2S window around each centre, S = sqrt(H W / segments).
// Distance D^2 = (d_colour / m)^2 + (d_xy / S)^2, m = compactness in colour
// units of the image scaled to [0, 1] (per image, all channels together).
// Centres start on a regular grid, moved to the lowest gradient of their 3x3
// neighbourhood; afterwards connectivity is enforced as skimage does:
// connected pieces smaller than min_size_factor * H W / segments join an
// adjacent superpixel, other disconnected pieces become their own.
// Labels are 0 .. count-1 in raster order of first appearance.
#pragma once

#include <cstdint>
#include <vector>

#include "../core/tensor.h"

namespace gb::explain {

struct SlicOptions {
    int64_t segments = 25;        // the approximate number of superpixels
    float compactness = 0.1f;     // m: larger gives squarer superpixels
    int64_t iterations = 10;
    float min_size_factor = 0.25f;
};

struct Segmentation {
    int64_t height = 0, width = 0, count = 0;
    std::vector<int32_t> labels;  // [height * width]
};

// image: [C, H, W] float32 (any range).
Segmentation slic(const Tensor& image, const SlicOptions& options = {});
Segmentation slic(const float* image, int64_t C, int64_t H, int64_t W, const SlicOptions& options = {});

}  // namespace gb::explain
