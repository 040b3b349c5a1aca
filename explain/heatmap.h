// Turning explanation maps into pictures: normalisation of raw maps, colouring
// with a colormap, blending over the input image (as opaque as the map is large), nearest-neighbour upscaling
// and PNG output. Images here are 8-bit, interleaved row-major (H x W x C).
//   - Signed maps (LRP relevance) are normalised symmetrically, 0 -> 0.5, so
//     with a diverging colormap white means "no relevance".
//   - Unsigned maps (Grad-CAM, saliency) are min-max normalised.
// Input tensors may be float32 on any device; results are on the host.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/tensor.h"
#include "colormap.h"

namespace gb::explain {

struct Image {
    int64_t width = 0, height = 0, channels = 3;
    std::vector<uint8_t> pixels;  // height * width * channels bytes

    Rgb8 at(int64_t y, int64_t x) const;  // channels == 3
};

// Per trailing [H, W] map of a tensor of rank >= 2; the result has the same shape.
// normalize_signed: 0.5 + 0.5 * v / max|v| (an all-zero map -> all 0.5).
// normalize_minmax: (v - min) / (max - min) (a constant map -> all 0).
// Non-finite values raise gb::Error.
Tensor normalize_signed(const Tensor& map);
Tensor normalize_minmax(const Tensor& map);

// map: [H, W], [1, H, W] or [C, H, W] (summed over C). signed_map picks
// normalize_signed, else normalize_minmax; then the colormap colours each pixel.
Image render_heatmap(const Tensor& map, const Colormap& cmap, bool signed_map);
Image render_heatmap(const Tensor& map, const std::string& cmap_name, bool signed_map);

// An image [C, H, W] with C = 1 (grey, replicated) or 3, values in [0, 1]
// (clamped) -> RGB8.
Image to_rgb8(const Tensor& image);

// How opaque each pixel of a map's heatmap is in an overlay, in [0, 1], [H, W] (a map [H, W], [1, H, W] or
// [C, H, W], summed over C as render_heatmap does): for signed maps |v| / max|v| (0 relevance -> 0, the
// largest magnitude -> 1, an all-zero map -> 0), for sequential maps (CAMs, saliency) the min-max normalised
// value (the colormap's low end -> 0, the high end -> 1; a constant map -> 0). Non-finite values raise gb::Error.
Tensor overlay_opacity(const Tensor& map, bool signed_map);

// The heatmap of `map` (render_heatmap) over the image, per pixel and channel
//   out = (1 - a) * image + a * heatmap,  a = alpha * overlay_opacity(map)
// so a pixel of zero relevance shows the image unchanged and one of the largest |relevance| shows the colour
// at opacity `alpha` (in [0, 1]: the largest opacity, not a uniform one). A map of another size than the
// image is resized bilinearly (heatmap colours and opacity alike) to the image's size.
Image overlay(const Image& rgb, const Tensor& map, const Colormap& cmap, bool signed_map, float alpha);
Image overlay(const Image& rgb, const Tensor& map, const std::string& cmap_name, bool signed_map, float alpha);
Image overlay(const Tensor& image, const Tensor& map, const std::string& cmap_name, bool signed_map, float alpha);

// Bilinear resize of an RGB8 image (half-pixel centres, as PyTorch's
// interpolate with align_corners=False).
Image resize_bilinear(const Image& rgb, int64_t width, int64_t height);
// Each pixel becomes a factor x factor block (sharp, for small maps such as 28x28 -> 224x224).
Image upscale_nearest(const Image& rgb, int64_t factor);

// PNG through io::save_png (atomic) / in memory.
void save_png(const std::string& path, const Image& image);
std::vector<uint8_t> encode_png(const Image& image);
// render_heatmap, then upscale_nearest by `upscale`, then save_png.
void save_heatmap_png(const std::string& path, const Tensor& map, const std::string& cmap_name, bool signed_map,
                      int64_t upscale = 1);

}  // namespace gb::explain
