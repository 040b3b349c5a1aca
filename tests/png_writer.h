// A minimal PNG encoder for tests: 8- or 16-bit grey, grey+alpha, RGB or RGBA
// (stb_image_write writes 8-bit only). Samples are given as integers, row-major,
// interleaved; 16-bit samples are written big-endian as the PNG spec says.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "temp_dir.h"

namespace gb::testing {

inline std::vector<uint8_t> png_bytes(const std::vector<uint16_t>& samples, int width, int height, int channels,
                                      int bits) {
    auto be32 = [](std::vector<uint8_t>& v, uint32_t x) {
        for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
    };
    auto chunk = [&](std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& data) {
        be32(out, static_cast<uint32_t>(data.size()));
        std::vector<uint8_t> body(type, type + 4);
        body.insert(body.end(), data.begin(), data.end());
        out.insert(out.end(), body.begin(), body.end());
        be32(out, static_cast<uint32_t>(crc32(0, body.data(), static_cast<uInt>(body.size()))));
    };
    const uint8_t colour_type = channels == 1 ? 0 : channels == 2 ? 4 : channels == 3 ? 2 : 6;
    std::vector<uint8_t> ihdr;
    be32(ihdr, static_cast<uint32_t>(width));
    be32(ihdr, static_cast<uint32_t>(height));
    ihdr.insert(ihdr.end(), {static_cast<uint8_t>(bits), colour_type, 0, 0, 0});
    std::vector<uint8_t> raw;  // filter byte 0 (None) per row
    for (int y = 0; y < height; ++y) {
        raw.push_back(0);
        for (int i = 0; i < width * channels; ++i) {
            const uint16_t s = samples[static_cast<size_t>(y * width * channels + i)];
            if (bits == 16) raw.push_back(static_cast<uint8_t>(s >> 8));
            raw.push_back(static_cast<uint8_t>(s & 0xFF));
        }
    }
    uLongf size = compressBound(static_cast<uLong>(raw.size()));
    std::vector<uint8_t> z(size);
    compress(z.data(), &size, raw.data(), static_cast<uLong>(raw.size()));
    z.resize(size);
    std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    chunk(out, "IHDR", ihdr);
    chunk(out, "IDAT", z);
    chunk(out, "IEND", {});
    return out;
}

inline void write_png(const std::string& path, const std::vector<uint16_t>& samples, int width, int height,
                      int channels, int bits) {
    write_bytes(path, png_bytes(samples, width, height, channels, bits));
}

}  // namespace gb::testing
