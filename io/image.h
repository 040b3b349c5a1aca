// Images on disk via stb: load (PNG, JPEG, BMP, GIF, TGA, PNM ...) into a
// float32 [C, H, W] tensor in [0, 1]; encode and write PNG (atomically).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace gb::io {

// channels = 0 keeps the file's colour (grey or grey+alpha -> 1, colour -> 3);
// 1 or 3 converts. gb::Error naming the file when it cannot be decoded.
Tensor load_image(const std::string& path, int64_t channels = 0);

// 8-bit interleaved pixels (H x W x channels, channels 1, 3 or 4) -> PNG bytes.
std::vector<uint8_t> encode_png(const uint8_t* pixels, int64_t width, int64_t height, int64_t channels);
void save_png(const std::string& path, const uint8_t* pixels, int64_t width, int64_t height, int64_t channels);

}  // namespace gb::io
