#include "io/image.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "core/factory.h"
#include "io/file_util.h"

namespace gb::io {

namespace {

// Image formats are told apart by their first bytes, before stb sees them: only the formats
// glassbox documents are handed to the decoder (stb also decodes PSD, HDR and PIC, which nobody
// feeds a classifier, and whose decoders would only widen what a hostile file can reach).
enum class Format { Png, Jpeg, Bmp, Gif, Tga, Pnm, Unknown };

Format sniff(const std::vector<uint8_t>& b) {
    auto starts = [&](std::initializer_list<uint8_t> sig) {
        return b.size() >= sig.size() && std::equal(sig.begin(), sig.end(), b.begin());
    };
    if (starts({0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'})) return Format::Png;
    if (starts({0xff, 0xd8})) return Format::Jpeg;
    if (starts({'B', 'M'})) return Format::Bmp;
    if (starts({'G', 'I', 'F', '8'})) return Format::Gif;
    if (starts({'P', '5'}) || starts({'P', '6'})) return Format::Pnm;
    // TGA has no magic number; stb's own test (colour-map type 0 or 1, a known image type) decides.
    if (b.size() >= 18 && b[1] <= 1 && (b[2] == 1 || b[2] == 2 || b[2] == 3 || b[2] == 9 || b[2] == 10 || b[2] == 11))
        return Format::Tga;
    return Format::Unknown;
}

// A PNG ends with its IEND chunk: walk the chunks (length, type, data, CRC) to find where, so that a
// truncated file or bytes after IEND are refused with the offset.
void check_png_extent(const std::vector<uint8_t>& b, const std::string& src) {
    size_t at = 8;
    while (true) {
        GB_CHECK(b.size() - at >= 12, "image '", src, "' is truncated: the PNG chunk at byte ", at, " needs 12 bytes, ",
                 b.size() - at, " are left (a PNG ends with an IEND chunk)");
        const uint64_t len = (uint64_t(b[at]) << 24) | (uint64_t(b[at + 1]) << 16) | (uint64_t(b[at + 2]) << 8) |
                             uint64_t(b[at + 3]);
        GB_CHECK(len <= 0x7fffffffu, "image '", src, "': PNG chunk at byte ", at, " claims ", len,
                 " bytes (more than 2^31 - 1, corrupt)");
        GB_CHECK(b.size() - at - 12 >= len, "image '", src, "' is truncated: the PNG chunk at byte ", at, " needs ",
                 len + 12, " bytes, ", b.size() - at, " are left");
        const bool iend = std::memcmp(b.data() + at + 4, "IEND", 4) == 0;
        at += 12 + static_cast<size_t>(len);
        if (iend) break;
    }
    GB_CHECK(at == b.size(), "image '", src, "' has ", b.size() - at, " bytes of trailing garbage after the PNG's ",
             "IEND chunk (from byte ", at, ")");
}

// The header of a binary PGM (P5) / PPM (P6): "P5 <width> <height> <maxval>" separated by
// whitespace and '#' comments, one whitespace byte, then width * height * channels samples of
// 1 byte (maxval < 256) or 2 big-endian bytes. stb zero-fills a short file and scales by 255
// whatever maxval says, so the extent and maxval are taken from here.
struct PnmHeader {
    int64_t width = 0, height = 0, channels = 0, maxval = 0;
    size_t data_at = 0;
};

PnmHeader parse_pnm(const std::vector<uint8_t>& b, const std::string& src) {
    PnmHeader h;
    h.channels = b[1] == '6' ? 3 : 1;
    size_t at = 2;
    auto number = [&](const char* what) {
        while (at < b.size()) {  // whitespace and comments (a comment runs to the end of its line)
            if (b[at] == '#') {
                while (at < b.size() && b[at] != '\n' && b[at] != '\r') ++at;
            } else if (std::isspace(b[at])) {
                ++at;
            } else {
                break;
            }
        }
        GB_CHECK(at < b.size() && b[at] >= '0' && b[at] <= '9', "image '", src, "': the PNM header has no ", what,
                 " at byte ", at, at >= b.size() ? " (truncated)" : "");
        int64_t v = 0;
        while (at < b.size() && b[at] >= '0' && b[at] <= '9') {
            v = v * 10 + (b[at] - '0');
            GB_CHECK(v <= 1'000'000'000, "image '", src, "': the PNM ", what, " at byte ", at, " is absurdly large");
            ++at;
        }
        return v;
    };
    h.width = number("width");
    h.height = number("height");
    h.maxval = number("maximum value");
    GB_CHECK(h.maxval >= 1 && h.maxval <= 65535, "image '", src, "': PNM maximum value ", h.maxval,
             " is outside [1, 65535]");
    GB_CHECK(at < b.size() && std::isspace(b[at]), "image '", src, "': the PNM header does not end with a whitespace"
             " byte at byte ", at, at >= b.size() ? " (truncated)" : "");
    h.data_at = at + 1;
    return h;
}

// Checked when the image has its size (from the header), before anything is decoded.
void check_pnm_extent(const std::vector<uint8_t>& b, const PnmHeader& h, const std::string& src) {
    const uint64_t need = static_cast<uint64_t>(h.width) * static_cast<uint64_t>(h.height) *
                          static_cast<uint64_t>(h.channels) * (h.maxval > 255 ? 2 : 1);
    const uint64_t have = b.size() - h.data_at;
    GB_CHECK(have >= need, "image '", src, "' is truncated: its PNM header (", h.width, "x", h.height, ", ",
             h.channels, " channel(s), maximum value ", h.maxval, ") needs ", need, " bytes of pixels from byte ",
             h.data_at, ", the file has ", have, " (it ends at byte ", b.size(), ")");
    GB_CHECK(have == need, "image '", src, "' has ", have - need, " bytes of trailing garbage after its pixels (from ",
             "byte ", h.data_at + need, "; a file with several PNM images is not supported)");
}

int64_t env_limit(const char* name, int64_t fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    char* end = nullptr;
    errno = 0;
    const long long n = std::strtoll(v, &end, 10);
    GB_CHECK(errno == 0 && end && *end == '\0' && n > 0, "environment variable ", name, "='", v,
             "' is not a positive integer");
    return n;
}

}  // namespace

int64_t max_image_pixels() { return env_limit("GB_MAX_IMAGE_PIXELS", kMaxImagePixels); }

Tensor load_image(const std::string& path, int64_t channels, std::vector<std::string>* notes, int64_t max_pixels) {
    GB_CHECK(channels == 0 || channels == 1 || channels == 3, "load_image: channels must be 0 (as stored), 1 or 3, got ",
             channels);
    std::error_code ec;
    GB_CHECK(std::filesystem::exists(path, ec), "cannot read image '", path, "': no such file");
    // The whole file in memory (read to its end, so pipes and FIFOs work), then decoded from there.
    return decode_image(read_file(path, uint64_t(1) << 31), path, channels, notes, max_pixels);
}

Tensor decode_image(const std::vector<uint8_t>& bytes, const std::string& path, int64_t channels,
                    std::vector<std::string>* notes, int64_t max_pixels) {
    GB_CHECK(channels == 0 || channels == 1 || channels == 3, "decode_image: channels must be 0 (as stored), 1 or 3, got ",
             channels);
    GB_CHECK(bytes.size() < (uint64_t(1) << 31), "image '", path, "' is ", bytes.size(),
             " bytes; glassbox decodes images of less than 2 GiB");
    const Format format = sniff(bytes);
    GB_CHECK(format != Format::Unknown, "cannot decode image '", path,
             "': not a PNG, JPEG, BMP, GIF, TGA or binary PNM (P5/P6) file");
    const auto* buf = bytes.data();
    const int len = static_cast<int>(bytes.size());
    int w = 0, h = 0, n = 0;
    GB_CHECK(stbi_info_from_memory(buf, len, &w, &h, &n), "cannot decode image '", path, "': ", stbi_failure_reason(),
             " (glassbox reads PNG, JPEG, BMP, GIF, TGA and PNM files)");
    // The size is checked from the header, before decoding: a small file can claim a huge image
    // (a 16384 x 16384 PNG of one colour compresses to under 1 MB and decodes to 1 GB).
    const int64_t limit = max_pixels > 0 ? max_pixels : max_image_pixels();
    GB_CHECK(w > 0 && h > 0 && w <= kMaxImageSide && h <= kMaxImageSide, "image '", path, "' is ", w, "x", h,
             " pixels; glassbox loads images of 1 to ", kMaxImageSide, " pixels per side");
    GB_CHECK(static_cast<int64_t>(w) * h <= limit, "image '", path, "' is ", w, "x", h, " = ",
             static_cast<int64_t>(w) * h, " pixels, more than the limit of ", limit,
             " (a decompression bomb? set GB_MAX_IMAGE_PIXELS to allow larger images)");
    int64_t pnm_max = 0;
    if (format == Format::Png) check_png_extent(bytes, path);
    if (format == Format::Pnm) {
        const PnmHeader ph = parse_pnm(bytes, path);
        GB_CHECK(ph.width == w && ph.height == h, "image '", path, "': PNM header read as ", ph.width, "x", ph.height,
                 " but the decoder read ", w, "x", h);
        check_pnm_extent(bytes, ph, path);
        pnm_max = ph.maxval;
    }
    auto note = [&](const std::string& text) {
        if (notes) notes->push_back(text);
    };
    const int64_t plane = static_cast<int64_t>(w) * h;
    // Decode as stored: n = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.
    std::vector<float> px;
    if (stbi_is_16_bit_from_memory(buf, len)) {
        int w2 = 0, h2 = 0;
        std::unique_ptr<stbi_us, void (*)(void*)> raw(stbi_load_16_from_memory(buf, len, &w2, &h2, &n, 0),
                                                      &stbi_image_free);
        GB_CHECK(raw != nullptr, "cannot decode image '", path, "': ", stbi_failure_reason());
        GB_CHECK(w2 == w && h2 == h && n >= 1 && n <= 4, "cannot decode image '", path, "': decoded as ", w2, "x", h2,
                 "x", n, " after its header said ", w, "x", h);
        const float denom = static_cast<float>(pnm_max ? pnm_max : 65535);
        px.resize(static_cast<size_t>(plane * n));
        // PNM samples are big-endian; stb 2.27 copies them as they are (its PNG path swaps).
        const bool swap = pnm_max && std::endian::native == std::endian::little;
        for (size_t i = 0; i < px.size(); ++i) {
            const stbi_us v = raw.get()[i];
            px[i] = static_cast<float>(swap ? static_cast<stbi_us>((v >> 8) | (v << 8)) : v) / denom;
        }
        note("16-bit image: values scaled to [0, 1] by 1/" + std::to_string(pnm_max ? pnm_max : 65535));
    } else {
        int w2 = 0, h2 = 0;
        std::unique_ptr<stbi_uc, void (*)(void*)> raw(stbi_load_from_memory(buf, len, &w2, &h2, &n, 0),
                                                      &stbi_image_free);
        GB_CHECK(raw != nullptr, "cannot decode image '", path, "': ", stbi_failure_reason());
        GB_CHECK(w2 == w && h2 == h && n >= 1 && n <= 4, "cannot decode image '", path, "': decoded as ", w2, "x", h2,
                 "x", n, " after its header said ", w, "x", h);
        const float denom = static_cast<float>(pnm_max ? pnm_max : 255);
        px.resize(static_cast<size_t>(plane * n));
        for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<float>(raw.get()[i]) / denom;
        if (pnm_max && pnm_max != 255) note("PNM with maximum value " + std::to_string(pnm_max) + ": scaled by 1/" +
                                            std::to_string(pnm_max));
    }
    if (pnm_max) {
        // Netpbm: a sample above maxval is invalid (it would map outside [0, 1]; x / x is exactly 1).
        const auto bad = std::find_if(px.begin(), px.end(), [](float v) { return v > 1.f; });
        GB_CHECK(bad == px.end(), "image '", path, "': PNM sample ", bad - px.begin(), " is above the maximum value ",
                 pnm_max, " its header declares");
    }
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
