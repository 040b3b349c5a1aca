#include "io/transforms.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "core/error.h"
#include "core/factory.h"
#include "io/resample.h"

namespace gb::io {

namespace {

int64_t parse_size(const std::string& s, const std::string& what, const std::string& whole) {
    GB_CHECK(!s.empty() && s.size() <= 6 && s.find_first_not_of("0123456789") == std::string::npos, "bad ", what, " '",
             whole, "': expected N (pixels), WxH or 0 (off)");
    return std::stoll(s);
}

// "N" -> (N, N, true); "WxH" -> (W, H, false).
std::pair<int64_t, int64_t> parse_pair(const std::string& text, const std::string& what, bool& single) {
    const auto x = text.find_first_of("xX");
    single = x == std::string::npos;
    if (single) {
        const int64_t n = parse_size(text, what, text);
        return {n, n};
    }
    const int64_t w = parse_size(text.substr(0, x), what, text), h = parse_size(text.substr(x + 1), what, text);
    GB_CHECK(w > 0 && h > 0, "bad ", what, " '", text, "': width and height must be positive");
    return {w, h};
}

std::vector<float> parse_floats(const std::string& s, const std::string& whole) {
    std::vector<float> out;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, ',');) {
        char* end = nullptr;
        const float v = std::strtof(item.c_str(), &end);
        GB_CHECK(!item.empty() && end == item.c_str() + item.size() && std::isfinite(v), "bad --normalize '", whole,
                 "': '", item, "' is not a number (expected MEAN/STD, e.g. 0.485,0.456,0.406/0.229,0.224,0.225, or none)");
        out.push_back(v);
    }
    GB_CHECK(!out.empty() && s.back() != ',', "bad --normalize '", whole,
             "': expected MEAN/STD, e.g. 0.485,0.456,0.406/0.229,0.224,0.225, or none");
    return out;
}

std::string join(const std::vector<float>& v) {
    std::ostringstream out;
    for (size_t i = 0; i < v.size(); ++i) out << (i ? "," : "") << v[i];
    return out.str();
}

}  // namespace

ResizeSpec ResizeSpec::parse(const std::string& text) {
    bool single = false;
    const auto [w, h] = parse_pair(text, "--resize", single);
    ResizeSpec r;
    if (single)
        r.shorter = w;
    else
        r.width = w, r.height = h;
    return r;
}

std::string ResizeSpec::str() const {
    if (off()) return "off";
    if (shorter > 0) return "shorter side " + std::to_string(shorter);
    return "stretch to " + std::to_string(width) + "x" + std::to_string(height);
}

CropSpec CropSpec::parse(const std::string& text) {
    bool single = false;
    const auto [w, h] = parse_pair(text, "--crop", single);
    return CropSpec{w, h};
}

std::string CropSpec::str() const {
    return off() ? "off" : "centre " + std::to_string(width) + "x" + std::to_string(height);
}

Normalization Normalization::parse(const std::string& text, int64_t channels) {
    if (text == "none") return identity(channels);
    const auto slash = text.find('/');
    GB_CHECK(slash != std::string::npos && text.find('/', slash + 1) == std::string::npos, "bad --normalize '", text,
             "': expected MEAN/STD, e.g. 0.485,0.456,0.406/0.229,0.224,0.225, or none");
    Normalization n{parse_floats(text.substr(0, slash), text), parse_floats(text.substr(slash + 1), text)};
    for (auto* v : {&n.mean, &n.stddev}) {
        if (v->size() == 1) v->assign(static_cast<size_t>(channels), v->front());
        GB_CHECK(static_cast<int64_t>(v->size()) == channels, "bad --normalize '", text, "': ", v->size(),
                 " values for a model with ", channels, " input channel(s) (give ", channels, " or one)");
    }
    for (float s : n.stddev) GB_CHECK(s > 0.f, "bad --normalize '", text, "': every std must be positive");
    return n;
}

Normalization Normalization::identity(int64_t channels) {
    return Normalization{std::vector<float>(static_cast<size_t>(channels), 0.f),
                         std::vector<float>(static_cast<size_t>(channels), 1.f)};
}

Normalization Normalization::imagenet() {
    return Normalization{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
}

std::string Normalization::str() const { return join(mean) + " / " + join(stddev); }

std::pair<int64_t, int64_t> resized_size(int64_t height, int64_t width, const ResizeSpec& spec) {
    if (spec.off()) return {height, width};
    if (spec.shorter == 0) return {spec.height, spec.width};
    // torchvision.transforms.functional._compute_resized_output_size: int(size * long / short).
    const int64_t s = spec.shorter;
    if (width <= height)
        return {static_cast<int64_t>(static_cast<double>(s * height) / static_cast<double>(width)), s};
    return {s, static_cast<int64_t>(static_cast<double>(s * width) / static_cast<double>(height))};
}

Tensor resize_image(const Tensor& image, const ResizeSpec& spec) {
    const int64_t H = image.dim(image.rank() - 2), W = image.dim(image.rank() - 1);
    const auto [h, w] = resized_size(H, W, spec);
    GB_CHECK(h > 0 && w > 0, "resize: a ", W, "x", H, " image would become ", w, "x", h);
    if (h == H && w == W) return image;
    return resize_antialiased(image, h, w);
}

Tensor center_crop(const Tensor& image, int64_t height, int64_t width) {
    GB_CHECK(image.rank() >= 2, "center_crop: expected an image [..., H, W], got ", image.shape().str());
    const int64_t H = image.dim(image.rank() - 2), W = image.dim(image.rank() - 1);
    GB_CHECK(height > 0 && width > 0 && height <= H && width <= W, "crop ", width, "x", height,
             " is larger than the ", W, "x", H, " image it is taken from");
    if (height == H && width == W) return image;
    const int64_t top = static_cast<int64_t>(std::nearbyint(static_cast<double>(H - height) / 2.0));
    const int64_t left = static_cast<int64_t>(std::nearbyint(static_cast<double>(W - width) / 2.0));
    const int64_t planes = image.numel() / (H * W);
    const float* src = image.data<float>();
    std::vector<float> out(static_cast<size_t>(planes * height * width));
    for (int64_t p = 0; p < planes; ++p)
        for (int64_t y = 0; y < height; ++y)
            std::memcpy(out.data() + (p * height + y) * width, src + (p * H + top + y) * W + left,
                        static_cast<size_t>(width) * sizeof(float));
    std::vector<int64_t> dims = image.shape().dims();
    dims[dims.size() - 2] = height;
    dims[dims.size() - 1] = width;
    return from_vector(out, Shape(dims));
}

}  // namespace gb::io
