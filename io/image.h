// Images on disk via stb: load (PNG 8/16-bit, JPEG, BMP, GIF, TGA, PNM ...) into a
// float32 [C, H, W] tensor in [0, 1]; encode and write PNG (atomically).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/tensor.h"

namespace gb::io {

// channels = 0 keeps the file's colour (grey or grey+alpha -> 1, colour -> 3);
// 1 or 3 converts. An alpha channel is composited onto white (c' = a c + 1 - a);
// 16-bit files are read at full precision (value / 65535, else value / 255);
// colour -> grey is ITU-R 601-2 luma, 0.299 R + 0.587 G + 0.114 B (PIL's convert("L")),
// grey -> colour replicates the plane. Each of these steps appends a one-line,
// human-readable note to `notes` when given. gb::Error naming the file when it
// cannot be read or decoded.
//
// The whole file is read first (so pipes, FIFOs and /dev/fd/N work) and its size is checked from the
// header before decoding: at most kMaxImageSide pixels per side and max_pixels pixels in all
// (0: max_image_pixels()). A truncated PNG or PNM, or bytes after a PNG's IEND chunk or a PNM's
// pixels, are refused with the byte offset.
Tensor load_image(const std::string& path, int64_t channels = 0, std::vector<std::string>* notes = nullptr,
                  int64_t max_pixels = 0);
// The same from the file's bytes; `path` names them in messages.
Tensor decode_image(const std::vector<uint8_t>& bytes, const std::string& path, int64_t channels = 0,
                    std::vector<std::string>* notes = nullptr, int64_t max_pixels = 0);

// Plausibility limits of the image loader: 2^26 pixels (8192 x 8192, 256 MB as float RGB) unless the
// environment variable GB_MAX_IMAGE_PIXELS says otherwise, and 16384 pixels per side.
inline constexpr int64_t kMaxImagePixels = int64_t(1) << 26;
inline constexpr int64_t kMaxImageSide = 16384;
int64_t max_image_pixels();

// 8-bit interleaved pixels (H x W x channels, channels 1, 3 or 4) -> PNG bytes.
std::vector<uint8_t> encode_png(const uint8_t* pixels, int64_t width, int64_t height, int64_t channels);
void save_png(const std::string& path, const uint8_t* pixels, int64_t width, int64_t height, int64_t channels);

}  // namespace gb::io
