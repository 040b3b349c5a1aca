#include "io/image.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <memory>

#include "core/error.h"
#include "io/file_util.h"

namespace gb::io {

Tensor load_image(const std::string& path, int64_t channels) {
    GB_CHECK(channels == 0 || channels == 1 || channels == 3, "load_image: channels must be 0 (as stored), 1 or 3, got ",
             channels);
    int w = 0, h = 0, n = 0;
    GB_CHECK(stbi_info(path.c_str(), &w, &h, &n), "cannot read image '", path, "': ", stbi_failure_reason());
    GB_CHECK(w > 0 && h > 0 && static_cast<int64_t>(w) * h <= (int64_t(1) << 28), "image '", path, "' has size ", w,
             "x", h, ", outside what glassbox loads");
    const int want = channels ? static_cast<int>(channels) : (n <= 2 ? 1 : 3);
    std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load(path.c_str(), &w, &h, &n, want), &stbi_image_free);
    GB_CHECK(px != nullptr, "cannot decode image '", path, "': ", stbi_failure_reason());
    Tensor t(Shape{want, h, w});
    float* out = t.data<float>();
    for (int64_t c = 0; c < want; ++c)
        for (int64_t i = 0; i < static_cast<int64_t>(w) * h; ++i)
            out[c * w * h + i] = static_cast<float>(px.get()[i * want + c]) / 255.f;
    return t;
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
