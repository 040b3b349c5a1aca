#include "explain/heatmap.h"

#include <algorithm>
#include <cmath>

#include "io/image.h"
#include "kernels/common/resize.h"

namespace gb::explain {

namespace {

constexpr int64_t kMaxPixels = int64_t(1) << 28;

uint8_t to_u8(float v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.f, 1.f) * 255.f)); }

Image blank(int64_t width, int64_t height, int64_t channels) {
    GB_CHECK(width > 0 && height > 0 && width * height <= kMaxPixels, "image size ", width, "x", height,
             " is empty or too large");
    Image im;
    im.width = width;
    im.height = height;
    im.channels = channels;
    im.pixels.resize(static_cast<size_t>(width * height * channels));
    return im;
}

void check_rgb(const Image& im, const char* what) {
    GB_CHECK(im.channels == 3 && im.width > 0 && im.height > 0 &&
                 im.pixels.size() == static_cast<size_t>(im.width * im.height * 3),
             what, ": expected an RGB8 image with width * height * 3 bytes, got ", im.width, "x", im.height, "x",
             im.channels, " with ", im.pixels.size(), " bytes");
}

// A float32 host copy of `map` (rank >= 2), and the size of one trailing [H, W] map.
Tensor host_maps(const Tensor& map, const char* what, int64_t& plane) {
    GB_CHECK(map.defined() && map.dtype() == DType::Float32 && map.rank() >= 2, what,
             ": expected a float32 map of rank >= 2 ([..., H, W]), got ",
             map.defined() ? map.shape().str() + " " + dtype_name(map.dtype()) : std::string("an undefined tensor"));
    plane = map.dim(-2) * map.dim(-1);
    GB_CHECK(plane > 0, what, ": map ", map.shape().str(), " is empty");
    Tensor out = map.to(Device::cpu()).clone();
    const float* p = out.data<float>();
    for (int64_t i = 0; i < out.numel(); ++i)
        GB_CHECK(std::isfinite(p[i]), what, ": map ", map.shape().str(), " has a non-finite value (", p[i],
                 ") at element ", i);
    return out;
}

// A map [H, W], [1, H, W] or [C, H, W] as one float32 [H, W] plane on the host, summed over C.
Tensor summed_plane(const Tensor& map, const char* what) {
    GB_CHECK(map.defined() && (map.rank() == 2 || map.rank() == 3), what, ": expected a map [H, W], [1, H, W] ",
             "or [C, H, W], got ", map.defined() ? map.shape().str() : std::string("an undefined tensor"));
    const int64_t h = map.dim(-2), w = map.dim(-1), c = map.rank() == 3 ? map.dim(0) : 1;
    GB_CHECK(map.dtype() == DType::Float32 && c > 0, what, ": expected a float32 map with at least one channel, got ",
             map.shape().str(), " ", dtype_name(map.dtype()));
    const Tensor host = map.to(Device::cpu());
    Tensor summed(Shape{h, w});
    const float* src = host.data<float>();
    float* dst = summed.data<float>();
    for (int64_t i = 0; i < h * w; ++i) {
        float s = 0.f;
        for (int64_t k = 0; k < c; ++k) s += src[k * h * w + i];
        dst[i] = s;
    }
    return summed;
}

// Bilinear resize of one float plane (half-pixel centres, as resize_bilinear).
std::vector<float> resize_plane(const float* p, int64_t h, int64_t w, int64_t height, int64_t width) {
    std::vector<float> out(static_cast<size_t>(height * width));
    for (int64_t y = 0; y < height; ++y) {
        const kernels::LinearTaps ty = kernels::linear_taps(h, height, false, y);
        for (int64_t x = 0; x < width; ++x) {
            const kernels::LinearTaps tx = kernels::linear_taps(w, width, false, x);
            out[static_cast<size_t>(y * width + x)] = ty.w0 * (tx.w0 * p[ty.i0 * w + tx.i0] + tx.w1 * p[ty.i0 * w + tx.i1]) +
                                                      ty.w1 * (tx.w0 * p[ty.i1 * w + tx.i0] + tx.w1 * p[ty.i1 * w + tx.i1]);
        }
    }
    return out;
}

}  // namespace

Rgb8 Image::at(int64_t y, int64_t x) const {
    GB_CHECK(channels == 3 && y >= 0 && y < height && x >= 0 && x < width, "Image::at(", y, ", ", x,
             ") outside a ", width, "x", height, "x", channels, " image");
    const size_t i = static_cast<size_t>((y * width + x) * 3);
    return Rgb8{pixels[i], pixels[i + 1], pixels[i + 2]};
}

Tensor normalize_signed(const Tensor& map) {
    int64_t plane = 0;
    Tensor out = host_maps(map, "normalize_signed", plane);
    float* p = out.data<float>();
    for (int64_t m = 0; m < out.numel() / plane; ++m) {
        float* q = p + m * plane;
        float peak = 0.f;
        for (int64_t i = 0; i < plane; ++i) peak = std::max(peak, std::fabs(q[i]));
        for (int64_t i = 0; i < plane; ++i) q[i] = peak > 0.f ? 0.5f + 0.5f * (q[i] / peak) : 0.5f;
    }
    return out;
}

Tensor normalize_minmax(const Tensor& map) {
    int64_t plane = 0;
    Tensor out = host_maps(map, "normalize_minmax", plane);
    float* p = out.data<float>();
    for (int64_t m = 0; m < out.numel() / plane; ++m) {
        float* q = p + m * plane;
        const auto [lo, hi] = std::minmax_element(q, q + plane);
        const float min = *lo, range = *hi - *lo;
        for (int64_t i = 0; i < plane; ++i) q[i] = range > 0.f ? (q[i] - min) / range : 0.f;
    }
    return out;
}

Image render_heatmap(const Tensor& map, const Colormap& cmap, bool signed_map) {
    const Tensor summed = summed_plane(map, "render_heatmap");
    const Tensor norm = signed_map ? normalize_signed(summed) : normalize_minmax(summed);
    const float* v = norm.data<float>();
    Image im = blank(summed.dim(1), summed.dim(0), 3);
    for (int64_t i = 0; i < summed.numel(); ++i) {
        const Rgb8 rgb = cmap(v[i]);
        im.pixels[static_cast<size_t>(3 * i)] = rgb.r;
        im.pixels[static_cast<size_t>(3 * i + 1)] = rgb.g;
        im.pixels[static_cast<size_t>(3 * i + 2)] = rgb.b;
    }
    return im;
}

Image render_heatmap(const Tensor& map, const std::string& cmap_name, bool signed_map) {
    return render_heatmap(map, colormap(cmap_name), signed_map);
}

Image to_rgb8(const Tensor& image) {
    GB_CHECK(image.defined() && image.rank() == 3 && (image.dim(0) == 1 || image.dim(0) == 3) &&
                 image.dtype() == DType::Float32,
             "expected a float32 image [C, H, W] with C = 1 or 3, got ",
             image.defined() ? image.shape().str() + " " + dtype_name(image.dtype()) : std::string("an undefined tensor"));
    const int64_t c = image.dim(0), h = image.dim(1), w = image.dim(2);
    const Tensor host = image.to(Device::cpu());
    const float* p = host.data<float>();
    Image im = blank(w, h, 3);
    for (int64_t i = 0; i < h * w; ++i)
        for (int64_t k = 0; k < 3; ++k)
            im.pixels[static_cast<size_t>(3 * i + k)] = to_u8(p[(c == 3 ? k : 0) * h * w + i]);
    return im;
}

Tensor overlay_opacity(const Tensor& map, bool signed_map) {
    if (!signed_map) return normalize_minmax(summed_plane(map, "overlay_opacity"));
    Tensor out = summed_plane(map, "overlay_opacity");
    float* p = out.data<float>();
    float peak = 0.f;
    for (int64_t i = 0; i < out.numel(); ++i) {
        GB_CHECK(std::isfinite(p[i]), "overlay_opacity: map ", map.shape().str(), " has a non-finite value (", p[i],
                 ") at element ", i);
        peak = std::max(peak, std::fabs(p[i]));
    }
    for (int64_t i = 0; i < out.numel(); ++i) p[i] = peak > 0.f ? std::fabs(p[i]) / peak : 0.f;
    return out;
}

Image overlay(const Image& rgb, const Tensor& map, const Colormap& cmap, bool signed_map, float alpha) {
    check_rgb(rgb, "overlay: image");
    GB_CHECK(alpha >= 0.f && alpha <= 1.f, "overlay: alpha must be in [0, 1], got ", alpha);
    Image heat = render_heatmap(map, cmap, signed_map);
    const Tensor opacity = overlay_opacity(map, signed_map);
    std::vector<float> a(opacity.data<float>(), opacity.data<float>() + opacity.numel());
    if (heat.width != rgb.width || heat.height != rgb.height) {
        a = resize_plane(a.data(), heat.height, heat.width, rgb.height, rgb.width);
        heat = resize_bilinear(heat, rgb.width, rgb.height);
    }
    Image out = blank(rgb.width, rgb.height, 3);
    for (size_t i = 0; i < out.pixels.size(); ++i) {
        const float w = alpha * a[i / 3];
        out.pixels[i] = static_cast<uint8_t>(std::lround((1.f - w) * rgb.pixels[i] + w * heat.pixels[i]));
    }
    return out;
}

Image overlay(const Image& rgb, const Tensor& map, const std::string& cmap_name, bool signed_map, float alpha) {
    return overlay(rgb, map, colormap(cmap_name), signed_map, alpha);
}

Image overlay(const Tensor& image, const Tensor& map, const std::string& cmap_name, bool signed_map, float alpha) {
    return overlay(to_rgb8(image), map, colormap(cmap_name), signed_map, alpha);
}

Image resize_bilinear(const Image& rgb, int64_t width, int64_t height) {
    check_rgb(rgb, "resize_bilinear");
    Image out = blank(width, height, 3);
    for (int64_t y = 0; y < height; ++y) {
        const kernels::LinearTaps ty = kernels::linear_taps(rgb.height, height, false, y);
        for (int64_t x = 0; x < width; ++x) {
            const kernels::LinearTaps tx = kernels::linear_taps(rgb.width, width, false, x);
            for (int64_t k = 0; k < 3; ++k) {
                auto px = [&](int64_t yy, int64_t xx) {
                    return static_cast<float>(rgb.pixels[static_cast<size_t>((yy * rgb.width + xx) * 3 + k)]);
                };
                const float v = ty.w0 * (tx.w0 * px(ty.i0, tx.i0) + tx.w1 * px(ty.i0, tx.i1)) +
                                ty.w1 * (tx.w0 * px(ty.i1, tx.i0) + tx.w1 * px(ty.i1, tx.i1));
                out.pixels[static_cast<size_t>((y * width + x) * 3 + k)] =
                    static_cast<uint8_t>(std::lround(std::clamp(v, 0.f, 255.f)));
            }
        }
    }
    return out;
}

Image upscale_nearest(const Image& rgb, int64_t factor) {
    check_rgb(rgb, "upscale_nearest");
    GB_CHECK(factor >= 1 && factor <= 64, "upscale_nearest: factor must be in [1, 64], got ", factor);
    Image out = blank(rgb.width * factor, rgb.height * factor, 3);
    for (int64_t y = 0; y < out.height; ++y)
        for (int64_t x = 0; x < out.width; ++x)
            for (int64_t k = 0; k < 3; ++k)
                out.pixels[static_cast<size_t>((y * out.width + x) * 3 + k)] =
                    rgb.pixels[static_cast<size_t>(((y / factor) * rgb.width + x / factor) * 3 + k)];
    return out;
}

std::vector<uint8_t> encode_png(const Image& image) {
    check_rgb(image, "encode_png");
    return io::encode_png(image.pixels.data(), image.width, image.height, image.channels);
}

void save_png(const std::string& path, const Image& image) {
    check_rgb(image, "save_png");
    io::save_png(path, image.pixels.data(), image.width, image.height, image.channels);
}

void save_heatmap_png(const std::string& path, const Tensor& map, const std::string& cmap_name, bool signed_map,
                      int64_t upscale) {
    save_png(path, upscale_nearest(render_heatmap(map, cmap_name, signed_map), upscale));
}

}  // namespace gb::explain
