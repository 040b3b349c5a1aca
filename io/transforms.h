// Decode-time preprocessing of images, as torchvision's evaluation transform:
// Resize (the shorter side to N keeping the aspect ratio, or stretched to W x H;
// antialiased, io/resample.h), CenterCrop, and the per-channel normalisation
// (x - mean) / std. The option texts are parsed here so that every command reads
// them the same way.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/tensor.h"

namespace gb::io {

// "N": shorter side to N, the longer one to floor(N * long / short) (torchvision's
// rule); "WxH": exactly W wide and H high (the aspect ratio is not kept); "0": off.
struct ResizeSpec {
    int64_t shorter = 0;
    int64_t width = 0, height = 0;
    bool off() const { return shorter == 0 && width == 0; }
    static ResizeSpec parse(const std::string& text);  // gb::Error quoting `text` when malformed
    std::string str() const;                            // "off", "shorter side 256", "stretch to 28x28"
};

// "N": an N x N centre crop; "WxH"; "0": off.
struct CropSpec {
    int64_t width = 0, height = 0;
    bool off() const { return width == 0; }
    static CropSpec parse(const std::string& text);
    std::string str() const;
};

// "M1,M2,M3/S1,S2,S3" (one value each broadcasts to every channel) or "none" (mean 0, std 1).
struct Normalization {
    std::vector<float> mean, stddev;
    static Normalization parse(const std::string& text, int64_t channels);
    static Normalization identity(int64_t channels);
    static Normalization imagenet();  // torchvision's 0.485,0.456,0.406 / 0.229,0.224,0.225
    std::string str() const;          // "0.485,0.456,0.406 / 0.229,0.224,0.225"
};

// (height, width) of an H x W image after `spec`.
std::pair<int64_t, int64_t> resized_size(int64_t height, int64_t width, const ResizeSpec& spec);
// image [..., H, W] -> resized (the input itself when the size does not change).
Tensor resize_image(const Tensor& image, const ResizeSpec& spec);
// The centre height x width window of [..., H, W]; torchvision's offsets
// top = round((H - height) / 2), left = round((W - width) / 2) (round half to even,
// as Python's round). gb::Error when the window is larger than the image.
Tensor center_crop(const Tensor& image, int64_t height, int64_t width);

}  // namespace gb::io
