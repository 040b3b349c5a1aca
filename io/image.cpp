#include "io/image.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "core/factory.h"
#include "io/file_util.h"

namespace gb::io {

Tensor load_image(const std::string& path, int64_t channels, std::vector<std::string>* notes) {
    GB_CHECK(channels == 0 || channels == 1 || channels == 3, "load_image: channels must be 0 (as stored), 1 or 3, got ",
             channels);
    GB_CHECK(std::filesystem::is_regular_file(path), "cannot read image '", path, "': no such file");
    int w = 0, h = 0, n = 0;
    GB_CHECK(stbi_info(path.c_str(), &w, &h, &n), "cannot decode image '", path, "': ", stbi_failure_reason(),
             " (glassbox reads PNG, JPEG, BMP, GIF, TGA and PNM files)");
    GB_CHECK(w > 0 && h > 0 && static_cast<int64_t>(w) * h <= (int64_t(1) << 28), "image '", path, "' has size ", w,
             "x", h, ", outside what glassbox loads");
    auto note = [&](const std::string& text) {
        if (notes) notes->push_back(text);
    };
    const int64_t plane = static_cast<int64_t>(w) * h;
    // Decode as stored: n = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.
    std::vector<float> px;
    if (stbi_is_16_bit(path.c_str())) {
        std::unique_ptr<stbi_us, void (*)(void*)> raw(stbi_load_16(path.c_str(), &w, &h, &n, 0), &stbi_image_free);
        GB_CHECK(raw != nullptr, "cannot decode image '", path, "': ", stbi_failure_reason());
        px.resize(static_cast<size_t>(plane * n));
        for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<float>(raw.get()[i]) / 65535.f;
        note("16-bit image: values scaled to [0, 1] by 1/65535");
    } else {
        std::unique_ptr<stbi_uc, void (*)(void*)> raw(stbi_load(path.c_str(), &w, &h, &n, 0), &stbi_image_free);
        GB_CHECK(raw != nullptr, "cannot decode image '", path, "': ", stbi_failure_reason());
        px.resize(static_cast<size_t>(plane * n));
        for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<float>(raw.get()[i]) / 255.f;
    }
    GB_CHECK(n >= 1 && n <= 4, "cannot decode image '", path, "': ", n, " channels");
    const int64_t colour = n >= 3 ? 3 : 1;
    // Planar [colour, H, W], alpha composited onto white.
    std::vector<float> planes(static_cast<size_t>(colour * plane));
    const bool alpha = n == 2 || n == 4;
    for (int64_t i = 0; i < plane; ++i) {
        const float* p = px.data() + i * n;
        const float a = alpha ? p[n - 1] : 1.f;
        for (int64_t c = 0; c < colour; ++c) planes[static_cast<size_t>(c * plane + i)] = a * p[c] + (1.f - a);
    }
    if (alpha) note(std::string(n == 2 ? "grey+alpha" : "RGBA") + " image: composited onto white");
    const int64_t want = channels ? channels : colour;
    if (want == colour) return from_vector(planes, Shape{colour, h, w});
    std::vector<float> out(static_cast<size_t>(want * plane));
    if (want == 1) {
        for (int64_t i = 0; i < plane; ++i)
            out[static_cast<size_t>(i)] = 0.299f * planes[static_cast<size_t>(i)] +
                                          0.587f * planes[static_cast<size_t>(plane + i)] +
                                          0.114f * planes[static_cast<size_t>(2 * plane + i)];
        note("RGB converted to grey (0.299 R + 0.587 G + 0.114 B, as PIL's convert(\"L\"))");
    } else {
        for (int64_t c = 0; c < 3; ++c) std::copy(planes.begin(), planes.end(), out.begin() + c * plane);
        note("grey converted to RGB (the grey plane in all three channels)");
    }
    return from_vector(out, Shape{want, h, w});
}

std::vector<uint8_t> encode_png(const uint8_t* pixels, int64_t width, int64_t height, int64_t channels) {
    GB_CHECK(width > 0 && height > 0 && (channels == 1 || channels == 3 || channels == 4), "encode_png: bad image ",
             width, "x", height, "x", channels);
    std::vector<uint8_t> out;
    auto sink = [](void* ctx, void* data, int size) {
        auto* v = static_cast<std::vector<uint8_t>*>(ctx);
        v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
    };
    const int ok = stbi_write_png_to_func(sink, &out, static_cast<int>(width), static_cast<int>(height),
                                          static_cast<int>(channels), pixels, static_cast<int>(width * channels));
    GB_CHECK(ok, "encode_png: stb_image_write failed");
    return out;
}

void save_png(const std::string& path, const uint8_t* pixels, int64_t width, int64_t height, int64_t channels) {
    const std::vector<uint8_t> png = encode_png(pixels, width, height, channels);
    write_file_atomic(path, [&](std::ostream& out) {
        out.write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
    });
}

}  // namespace gb::io
