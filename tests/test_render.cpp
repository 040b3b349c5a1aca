// Rendering of explanations: .npy files (round trips, the exact layout, every
// malformed case), colormaps, map normalisation, heatmaps and overlays, and the
// HTML report (escaping, one <img> per picture, every data: URI a PNG).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "explain/colormap.h"
#include "explain/heatmap.h"
#include "explain/plot.h"
#include "explain/report.h"
#include "io/file_util.h"
#include "io/image.h"
#include "io/npy.h"
#include "temp_dir.h"
#include "testing.h"

using namespace gb;
using namespace gb::testing;
using explain::Image;
using explain::Rgb8;

namespace {

std::vector<uint8_t> bytes_of(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// A .npy file from its parts: version, header text (unpadded), data bytes.
std::vector<uint8_t> npy_file(const std::string& header, size_t data_bytes, uint8_t major = 1) {
    std::string out = "\x93NUMPY";
    out += static_cast<char>(major);
    out += '\0';
    out += static_cast<char>(header.size() & 0xFF);
    out += static_cast<char>(header.size() >> 8);
    if (major != 1) out += std::string(2, '\0');
    out += header;
    out += std::string(data_bytes, '\0');
    return bytes_of(out);
}

std::vector<uint8_t> base64_decode(const std::string& s) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    REQUIRE(s.size() % 4 == 0);
    std::vector<uint8_t> out;
    for (size_t i = 0; i < s.size(); i += 4) {
        uint32_t v = 0;
        int n = 0;
        for (size_t k = 0; k < 4; ++k) {
            const char c = s[i + k];
            if (c == '=') {
                REQUIRE(i + 4 == s.size());
                v <<= 6;
                continue;
            }
            const int d = value(c);
            REQUIRE_MESSAGE(d >= 0, "bad base64 character " << c);
            v = (v << 6) | static_cast<uint32_t>(d);
            ++n;
        }
        for (int k = 0; k < n - 1; ++k) out.push_back(static_cast<uint8_t>(v >> (16 - 8 * k)));
    }
    return out;
}

size_t count(const std::string& hay, const std::string& needle) {
    size_t n = 0;
    for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
    return n;
}

}  // namespace

TEST_CASE("npy: float32 and int32 round trips at several ranks") {
    TempDir dir("npy");
    for (const Shape& s : {Shape{}, Shape{5}, Shape{2, 3}, Shape{2, 1, 4, 3}, Shape{0, 3}}) {
        const Tensor f = rand_tensor(s, 7);
        io::save_npy(dir.path("f.npy"), f);
        const Tensor g = io::load_npy(dir.path("f.npy"));
        CHECK(g.shape() == s);
        CHECK(g.dtype() == DType::Float32);
        CHECK(g.to_vector<float>() == f.to_vector<float>());
    }
    const Tensor i = from_vector(std::vector<int32_t>{-7, 0, 2147483647, -2147483647 - 1, 42, 3}, Shape{3, 2});
    io::save_npy(dir.path("i.npy"), i);
    const Tensor j = io::load_npy(dir.path("i.npy"));
    CHECK(j.dtype() == DType::Int32);
    CHECK(j.shape() == Shape{3, 2});
    CHECK(j.to_vector<int32_t>() == i.to_vector<int32_t>());
}

TEST_CASE("npy: the file is laid out byte for byte as numpy writes it") {
    const std::string h23 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    const std::string h5 = "{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }";
    CHECK(io::npy_header(DType::Float32, Shape{2, 3}) == h23 + std::string(118 - h23.size() - 1, ' ') + "\n");
    CHECK(io::npy_header(DType::Int32, Shape{5}) == h5 + std::string(118 - h5.size() - 1, ' ') + "\n");
    CHECK(io::npy_header(DType::Float32, Shape{}).find("'shape': (), }") != std::string::npos);

    const Tensor t = from_vector(std::vector<float>{1.f, -2.f, 0.5f, 0.f, 3.25f, -0.125f}, Shape{2, 3});
    const std::vector<uint8_t> file = io::encode_npy(t);
    REQUIRE(file.size() == 128 + 24);
    const std::vector<uint8_t> prefix = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 118, 0};
    CHECK(std::vector<uint8_t>(file.begin(), file.begin() + 10) == prefix);
    CHECK(std::string(file.begin() + 10, file.begin() + 128) == io::npy_header(DType::Float32, Shape{2, 3}));
    const uint8_t minus_two[4] = {0x00, 0x00, 0x00, 0xC0};  // -2.0f little-endian
    CHECK(std::memcmp(file.data() + 128 + 4, minus_two, 4) == 0);
    for (const Shape& s : {Shape{}, Shape{7}, Shape{100000, 100000, 3}, Shape{1, 2, 3, 4, 5, 6, 7, 8}})
        CHECK((10 + io::npy_header(DType::Float32, s).size()) % 64 == 0);
}

TEST_CASE("npy: malformed files are rejected with the file named") {
    TempDir dir("npy-bad");
    auto expect = [&](const std::string& name, const std::vector<uint8_t>& bytes, const std::string& msg) {
        write_bytes(dir.path(name), bytes);
        CAPTURE(name);
        CHECK_THROWS_WITH_AS(io::load_npy(dir.path(name)), doctest::Contains(msg.c_str()), Error);
        CHECK_THROWS_WITH_AS(io::load_npy(dir.path(name)), doctest::Contains(dir.path(name).c_str()), Error);
    };
    const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
    expect("magic.npy", bytes_of("\x93NUMPX\x01\x00"), "magic");
    expect("empty.npy", {}, "magic");
    auto v9 = npy_file(ok, 24);
    v9[6] = 9;
    expect("version.npy", v9, "version 9.0");
    auto short_header = npy_file(ok, 0);
    short_header.resize(40);
    expect("short-header.npy", short_header, "truncated");
    expect("no-len.npy", {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 5}, "truncated");
    expect("not-dict.npy", npy_file("[1, 2]\n", 0), "malformed .npy header");
    expect("missing-key.npy", npy_file("{'descr': '<f4', 'shape': (2, 3), }\n", 24), "must have");
    expect("extra-key.npy", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}\n", 8),
           "unexpected key 'x'");
    expect("dup-key.npy", npy_file("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n", 8),
           "twice");
    expect("big-endian.npy", npy_file("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }\n", 24),
           "'>f4' is not supported");
    expect("f8.npy", npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }\n", 48), "'<f8'");
    expect("fortran.npy", npy_file("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n", 24),
           "Fortran order");
    expect("bool.npy", npy_file("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3), }\n", 24), "True or False");
    expect("tuple.npy", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (5), }\n", 20), "(n,)");
    expect("negative.npy", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }\n", 4),
           "non-negative integer");
    expect("trailing-text.npy", npy_file(ok.substr(0, ok.size() - 1) + " x\n", 24), "after the closing");
    expect("short-data.npy", npy_file(ok, 20), "truncated file");
    expect("long-data.npy", npy_file(ok, 28), "28 bytes");
    expect("huge.npy", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000000000), }\n", 0),
           "absurdly large");
    CHECK_THROWS_WITH_AS(io::load_npy(dir.path("missing.npy")), doctest::Contains("missing.npy"), Error);

    // Version 2.0 (4-byte header length) is read too.
    write_bytes(dir.path("v2.npy"), npy_file(ok, 24, 2));
    CHECK(io::load_npy(dir.path("v2.npy")).shape() == Shape{2, 3});
}

TEST_CASE("colormaps: diverging centres are white, ends blue and red; sequential endpoints") {
    const explain::Colormap& bwr = explain::colormap("bwr");
    CHECK(bwr.diverging());
    CHECK(bwr(0.5f) == Rgb8{255, 255, 255});
    CHECK(bwr(0.f) == Rgb8{0, 0, 255});
    CHECK(bwr(1.f) == Rgb8{255, 0, 0});
    CHECK(bwr(0.25f) == Rgb8{128, 128, 255});
    CHECK(bwr(-3.f) == bwr(0.f));
    CHECK(bwr(7.f) == bwr(1.f));
    const explain::Colormap& seismic = explain::colormap("seismic");
    CHECK(seismic(0.5f) == Rgb8{255, 255, 255});
    CHECK(seismic(0.25f) == Rgb8{0, 0, 255});
    CHECK(seismic(0.75f) == Rgb8{255, 0, 0});
    CHECK(seismic(1.f) == Rgb8{128, 0, 0});
    const Rgb8 s0 = seismic(0.f);
    CHECK((s0.r == 0 && s0.g == 0 && s0.b >= 76 && s0.b <= 77));
    const explain::Colormap& jet = explain::colormap("jet");
    CHECK_FALSE(jet.diverging());
    CHECK(jet(0.f) == Rgb8{0, 0, 128});
    CHECK(jet(1.f) == Rgb8{128, 0, 0});
    CHECK(jet(0.5f).g == 255);
    CHECK(explain::colormap("viridis")(0.f) == Rgb8{68, 1, 84});
    const Rgb8 v = explain::colormap("viridis")(0.5f);  // matplotlib: (33, 145, 140); the table interpolates
    CHECK((std::abs(v.r - 33) <= 1 && std::abs(v.g - 145) <= 1 && std::abs(v.b - 140) <= 1));
    CHECK(explain::colormap("viridis")(1.f) == Rgb8{253, 231, 37});
    CHECK(explain::colormap("gray")(0.5f) == Rgb8{128, 128, 128});
    CHECK(explain::colormap_names() == std::vector<std::string>{"bwr", "seismic", "jet", "viridis", "gray"});
    CHECK_THROWS_WITH_AS(explain::colormap("hot"), doctest::Contains("unknown colormap 'hot' (known: bwr, seismic"),
                         Error);
}

TEST_CASE("normalisation: signed maps put 0 at 0.5 and the larger extreme at 0 or 1, per map") {
    const Tensor m = from_vector(std::vector<float>{-2.f, 0.f, 1.f, 0.5f, 4.f, -1.f, 0.f, 2.f, 0.f, 0.f, 0.f, 0.f}, Shape{3, 2, 2});
    const std::vector<float> s = explain::normalize_signed(m).to_vector<float>();
    CHECK(s == std::vector<float>{0.f, 0.5f, 0.75f, 0.625f, 1.f, 0.375f, 0.5f, 0.75f, 0.5f, 0.5f, 0.5f, 0.5f});
    const std::vector<float> mm = explain::normalize_minmax(m).to_vector<float>();
    CHECK(mm == std::vector<float>{0.f, 2.f / 3, 1.f, 2.5f / 3, 1.f, 0.f, 0.2f, 0.6f, 0.f, 0.f, 0.f, 0.f});
    CHECK_THROWS_WITH_AS(explain::normalize_signed(from_vector(std::vector<float>{1.f, 2.f}, Shape{2})), doctest::Contains("rank >= 2"),
                         Error);
    CHECK_THROWS_WITH_AS(explain::normalize_minmax(from_vector(std::vector<float>{1.f, NAN}, Shape{1, 2})),
                         doctest::Contains("non-finite"), Error);
}

TEST_CASE("heatmaps: channels are summed, signed zero is white, nearest upscaling makes blocks") {
    const Tensor one = from_vector(std::vector<float>{-1.f, 0.f, 0.5f, 1.f}, Shape{2, 2});
    const Image a = explain::render_heatmap(one, "bwr", true);
    CHECK((a.width == 2 && a.height == 2 && a.channels == 3 && a.pixels.size() == 12));
    CHECK(a.at(0, 0) == Rgb8{0, 0, 255});
    CHECK(a.at(0, 1) == Rgb8{255, 255, 255});
    CHECK(a.at(1, 1) == Rgb8{255, 0, 0});
    CHECK(explain::render_heatmap(one.view(Shape{1, 2, 2}), "bwr", true).pixels == a.pixels);
    const Tensor halves = from_vector(std::vector<float>{-0.5f, 0.f, 0.25f, 0.5f, -0.5f, 0.f, 0.25f, 0.5f}, Shape{2, 2, 2});
    CHECK(explain::render_heatmap(halves, "bwr", true).pixels == a.pixels);
    const Image j = explain::render_heatmap(one, "jet", false);
    CHECK(j.at(0, 0) == Rgb8{0, 0, 128});
    CHECK(j.at(1, 1) == Rgb8{128, 0, 0});
    CHECK_THROWS_WITH_AS(explain::render_heatmap(Tensor(Shape{1, 1, 2, 2}), "jet", false),
                         doctest::Contains("[C, H, W]"), Error);

    const Image big = explain::upscale_nearest(a, 3);
    CHECK((big.width == 6 && big.height == 6));
    for (int64_t y = 0; y < 6; ++y)
        for (int64_t x = 0; x < 6; ++x) CHECK(big.at(y, x) == a.at(y / 3, x / 3));
    CHECK_THROWS_AS(explain::upscale_nearest(a, 0), Error);
}

TEST_CASE("overlay: opacity follows |relevance|; alpha is the largest opacity") {
    // Closed form (heatmap.h): out = lround((1 - a) * image + a * colour), a = alpha * |v| / max|v| (signed maps),
    // a = alpha * (v - min) / (max - min) (sequential maps), colour = render_heatmap's. Exact to the 8-bit value.
    const Tensor img = rand_tensor(Shape{3, 2, 3}, 3, 0.f, 1.f);
    const Image base = explain::to_rgb8(img);
    const Tensor map = from_vector(std::vector<float>{0.f, -4.f, 1.f, 2.f, 0.f, 4.f}, Shape{2, 3});  // max |v| = 4
    const Image heat = explain::render_heatmap(map, "seismic", true);
    const float alpha = 0.6f;
    const Image out = explain::overlay(img, map, "seismic", true, alpha);
    const std::vector<float> a = {0.f, 1.f, 0.25f, 0.5f, 0.f, 1.f};  // |v| / 4
    for (size_t i = 0; i < out.pixels.size(); ++i) {
        const float w = alpha * a[i / 3];
        CHECK(int(out.pixels[i]) == std::lround((1.f - w) * base.pixels[i] + w * heat.pixels[i]));
    }
    // Zero relevance: the image's own pixel, whatever alpha; the largest |v| (either sign): exactly alpha * colour +
    // (1 - alpha) * image.
    for (int k = 0; k < 3; ++k) {
        CHECK(out.pixels[size_t(k)] == base.pixels[size_t(k)]);
        CHECK(out.pixels[size_t(12 + k)] == base.pixels[size_t(12 + k)]);
        for (size_t px : {size_t(1), size_t(5)})
            CHECK(int(out.pixels[3 * px + k]) ==
                  std::lround(alpha * heat.pixels[3 * px + k] + (1.f - alpha) * base.pixels[3 * px + k]));
    }
    CHECK(explain::overlay_opacity(map, true).to_vector<float>() == a);
    // An all-zero map (signed) and a constant map (sequential) leave the image bit-identical, at any alpha.
    CHECK(explain::overlay(img, zeros(Shape{2, 3}), "bwr", true, 1.f).pixels == base.pixels);
    CHECK(explain::overlay(img, full(Shape{1, 2, 3}, 3.f), "jet", false, 1.f).pixels == base.pixels);
    CHECK(explain::overlay(img, map, "bwr", true, 0.f).pixels == base.pixels);
    // Sequential maps: opacity = the min-max value (min -4 -> 0, max 4 -> 1).
    CHECK(explain::overlay_opacity(map, false).to_vector<float>() == std::vector<float>{0.5f, 0.f, 0.625f, 0.75f, 0.5f, 1.f});
    const Image seq = explain::overlay(img, map, "jet", false, 1.f);
    const Image jet = explain::render_heatmap(map, "jet", false);
    for (int k = 0; k < 3; ++k) {
        CHECK(seq.pixels[size_t(3 + k)] == base.pixels[size_t(3 + k)]);  // the minimum: the image
        CHECK(seq.pixels[size_t(15 + k)] == jet.pixels[size_t(15 + k)]);  // the maximum at alpha 1: the colour
    }
    // [C, H, W] maps are summed over C, as render_heatmap does.
    CHECK(explain::overlay_opacity(from_vector(std::vector<float>{1.f, -1.f, 1.f, 1.f}, Shape{2, 1, 2}), true)
              .to_vector<float>() == std::vector<float>{1.f, 0.f});

    // A map of another size: colours and opacity resized bilinearly; a solid map stays solid.
    const Tensor grey = rand_tensor(Shape{1, 8, 8}, 5, 0.f, 1.f);
    const Image g = explain::overlay(grey, full(Shape{2, 2}, 1.f), "bwr", true, 0.5f);
    const Image gbase = explain::to_rgb8(grey);
    const Rgb8 red = explain::colormap("bwr")(1.f);
    CHECK((g.width == 8 && g.height == 8));
    for (int64_t y = 0; y < 8; ++y)
        for (int64_t x = 0; x < 8; ++x) {
            const int v = gbase.at(y, x).r;  // grey replicated
            CHECK(int(g.at(y, x).r) == std::lround(0.5f * red.r + 0.5f * v));
            CHECK(int(g.at(y, x).b) == std::lround(0.5f * red.b + 0.5f * v));
        }
    CHECK(explain::overlay(grey, from_vector(std::vector<float>{0.f, 0.f, 0.f, 1.f}, Shape{2, 2}), "bwr", true, 1.f)
              .at(0, 0) == gbase.at(0, 0));  // the corner pixel only sees the zero corner of the map
    CHECK_THROWS_WITH_AS(explain::overlay(grey, map, "bwr", true, 1.5f), doctest::Contains("alpha"), Error);
    CHECK_THROWS_WITH_AS(explain::overlay(Tensor(Shape{2, 4, 4}), map, "bwr", true, 0.5f), doctest::Contains("C = 1 or 3"), Error);
    CHECK_THROWS_WITH_AS(explain::overlay(grey, from_vector(std::vector<float>{1.f, NAN}, Shape{1, 2}), "bwr", true, 0.5f),
                         doctest::Contains("non-finite"), Error);
}

TEST_CASE("heatmap PNGs are written and read back at the upscaled size") {
    TempDir dir("heat-png");
    const Tensor map = rand_tensor(Shape{7, 5}, 11);
    explain::save_heatmap_png(dir.path("m.png"), map, "viridis", false, 4);
    const Tensor back = io::load_image(dir.path("m.png"), 3);
    CHECK(back.shape() == Shape{3, 28, 20});
    const Image expect = explain::upscale_nearest(explain::render_heatmap(map, "viridis", false), 4);
    const std::vector<float> px = back.to_vector<float>();
    CHECK(px[0] == doctest::Approx(expect.pixels[0] / 255.0));
    CHECK(px[28 * 20 + 27 * 20 + 19] == doctest::Approx(expect.pixels[(27 * 20 + 19) * 3 + 1] / 255.0));
}

TEST_CASE("report: escaped text, one <img> per picture, every data: URI is a PNG") {
    explain::Report r;
    r.title = "VGG <mini> & friends";
    r.date = "2024-01-02 03:04";
    r.info = {{"Model", "vgg-mini"}, {"Checkpoint", "/runs/a/model.safetensors"}};
    r.methods = {{"LRP-epsilon", "relevance propagated layer by layer"}, {"Grad-CAM", "gradient-weighted activations"}};
    const Image rel = explain::render_heatmap(rand_tensor(Shape{28, 28}, 1), "bwr", true);
    const Image cam = explain::render_heatmap(rand_tensor(Shape{7, 7}, 2), "jet", false);
    explain::ReportItem a;
    a.title = "sample 0";
    a.image = rand_tensor(Shape{1, 28, 28}, 3, 0.f, 1.f);
    a.true_label = "<script>alert(1)</script>";
    a.top_classes = {{"<script>alert(1)</script>", 0.8f}, {"Coat", 0.15f}, {"Bag", 0.05f}};
    a.maps = {{"LRP-epsilon", rel}, {"Grad-CAM", cam}};
    explain::ReportMapRow row;  // a method's map and overlay in one figure, then one flagged and not drawn
    row.method = "gradcam";
    row.caption = {"at layer <features.12>", "target: Bag (8)"};
    row.map = cam;
    row.overlay = explain::overlay(a.image, rand_tensor(Shape{7, 7}, 2), "jet", false, 0.5f);
    explain::ReportMapRow bad;
    bad.method = "ig";
    bad.flag = "contains NaN/Inf: 3 of 784 values; not drawn";
    a.rows = {row, bad};
    explain::ReportItem b;
    b.title = "sample \"1\"";
    b.image = rand_tensor(Shape{3, 16, 16}, 4, 0.f, 1.f);
    b.true_label = "Bag";
    b.top_classes = {{"Coat", 0.6f}, {"Bag", 0.3f}, {"Shirt", 0.1f}};
    b.maps = {{"LRP-epsilon", rel}, {"Grad-CAM", cam}};
    r.items = {a, b};

    const std::string html = explain::render_html(r);
    CHECK(count(html, "<img ") == 2 + 4 + 2);
    CHECK(count(html, "<figure class=\"method\">") == 1);
    CHECK(count(html, "<figure class=\"method flagged\">") == 1);
    const size_t pair = html.find("<div class=\"pair\">");
    REQUIRE(pair != std::string::npos);  // map, then overlay, inside the row's pair, then the caption
    const size_t map_alt = html.find("alt=\"gradcam map\"", pair), over_alt = html.find("alt=\"gradcam overlay\"", pair);
    CHECK((map_alt != std::string::npos && map_alt < over_alt && over_alt < html.find("</div>", pair)));
    CHECK(html.find("<figcaption><strong>gradcam</strong>\n<br>at layer &lt;features.12&gt;\n<br>target: Bag (8)</figcaption>") !=
          std::string::npos);
    CHECK(html.find("<br><span class=\"flag\">contains NaN/Inf: 3 of 784 values; not drawn</span>") != std::string::npos);
    CHECK(html.find("alt=\"ig map\"") == std::string::npos);
    CHECK(html.find("<script") == std::string::npos);
    CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
    CHECK(html.find("VGG &lt;mini&gt; &amp; friends") != std::string::npos);
    CHECK(html.find("sample &quot;1&quot;") != std::string::npos);
    CHECK(html.find("2024-01-02 03:04") != std::string::npos);
    CHECK(html.find("/runs/a/model.safetensors") != std::string::npos);
    CHECK(html.find("80.0%") != std::string::npos);
    CHECK(html.find("true: <strong>Bag</strong> (30.0%)") != std::string::npos);
    CHECK(count(html, "class=\"badge ok\"") == 1);
    CHECK(count(html, "class=\"badge bad\"") == 1);
    CHECK(count(html, "<figcaption>LRP-epsilon</figcaption>") == 2);
    CHECK(html.find("gradient-weighted activations") != std::string::npos);
    CHECK(html.find("rgb(255,255,255) 50%") != std::string::npos);  // the diverging legend's white centre

    const std::string prefix = "src=\"data:image/png;base64,";
    size_t uris = 0;
    for (size_t p = html.find(prefix); p != std::string::npos; p = html.find(prefix, p + 1)) {
        const size_t begin = p + prefix.size(), end = html.find('"', begin);
        REQUIRE(end != std::string::npos);
        const std::vector<uint8_t> png = base64_decode(html.substr(begin, end - begin));
        const std::vector<uint8_t> sig = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
        REQUIRE(png.size() > 8);
        CHECK(std::vector<uint8_t>(png.begin(), png.begin() + 8) == sig);
        ++uris;
    }
    CHECK(uris == 8);
    CHECK(base64_decode(explain::base64_encode(bytes_of("glassbox!!"))) == bytes_of("glassbox!!"));
    CHECK(explain::base64_encode(bytes_of("ab")) == "YWI=");

    TempDir dir("report");
    explain::save_html(dir.path("r.html"), r);
    const std::vector<uint8_t> file = io::read_file(dir.path("r.html"));
    CHECK(std::string(file.begin(), file.end()) == html);

    r.items[1].image = Tensor();
    CHECK_THROWS_WITH_AS(explain::render_html(r), doctest::Contains("report item 1"), Error);
}

TEST_CASE("line plots: nice ticks, twenty distinct series colours") {
    using gb::explain::nice_ticks;
    CHECK(nice_ticks(0, 1) == std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1});
    CHECK(nice_ticks(-3, 47).front() == -0.0);
    CHECK(nice_ticks(-3, 47).back() == 40);
    CHECK(gb::explain::series_color(0) == Rgb8{31, 119, 180});  // tab10 first
    for (size_t i = 0; i < 20; ++i)
        for (size_t j = 0; j < i; ++j) CHECK_FALSE(gb::explain::series_color(i) == gb::explain::series_color(j));
}

TEST_CASE("report sections: an escaped table and embedded figures before the cards") {
    gb::explain::Report r;
    r.title = "evaluation";
    r.date = "2026-01-01 00:00";
    gb::explain::ReportSection s;
    s.title = "AOPC <noise>";
    s.table = {{"method", "AOPC"}, {"lrp:epsilon-plus", "1.23 & more"}};
    Image picture;
    picture.width = 2, picture.height = 2;
    picture.pixels.assign(12, 200);
    s.figures.emplace_back("a picture", picture);
    r.sections.push_back(s);
    const std::string html = gb::explain::render_html(r);
    CHECK(html.find("<h2>AOPC &lt;noise&gt;</h2>") != std::string::npos);
    CHECK(html.find("<th>method</th><th>AOPC</th>") != std::string::npos);
    CHECK(html.find("<td>1.23 &amp; more</td>") != std::string::npos);
    CHECK(html.find("<figure class=\"plot\"><img src=\"data:image/png;base64,") != std::string::npos);
}

namespace {

// Well-formedness of our SVG (what an XML parser needs): every element closed in order, attribute values quoted,
// no bare '&' or '<' in text. Returns the first problem, or "" when there is none.
std::string xml_problem(const std::string& doc) {
    std::vector<std::string> open;
    size_t i = 0;
    while (i < doc.size()) {
        if (doc[i] == '&') {
            const size_t semi = doc.find(';', i);
            if (semi == std::string::npos || semi - i > 6) return "bare & at " + std::to_string(i);
            i = semi + 1;
            continue;
        }
        if (doc[i] != '<') {
            ++i;
            continue;
        }
        const size_t end = doc.find('>', i);
        if (end == std::string::npos) return "unclosed tag at " + std::to_string(i);
        std::string tag = doc.substr(i + 1, end - i - 1);
        i = end + 1;
        if (tag.find('<') != std::string::npos) return "'<' inside a tag: " + tag;
        if (std::count(tag.begin(), tag.end(), '"') % 2 != 0) return "unbalanced quotes in " + tag;
        if (tag[0] == '/') {
            if (open.empty() || open.back() != tag.substr(1)) return "</" + tag.substr(1) + "> closes nothing open";
            open.pop_back();
        } else if (tag.back() != '/') {
            open.push_back(tag.substr(0, tag.find_first_of(" \n")));
        }
    }
    return open.empty() ? "" : "<" + open.back() + "> never closed";
}

size_t count_of(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

}  // namespace

TEST_CASE("line plots as SVG: standalone, one polyline per series, ticks, escaped text, the input checks") {
    gb::explain::LinePlot p;
    p.title = "p <path>";
    p.x_label = "step";
    p.y_label = "probability";
    p.series.push_back({"T-shirt & top", {0, 0.5, 2}, {0, 0.5, 1}});
    p.series.push_back({"b", {0, 2}, {1, 0}});
    const std::string svg = gb::explain::render_line_plot_svg(p, 400, 300);
    CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 400 300.00\" width=\"400\" height=\"300.00\"", 0) == 0);
    CHECK(xml_problem(svg) == "");
    CHECK(count_of(svg, "<polyline") == 2);
    CHECK(svg.find("stroke=\"#1f77b4\" stroke-width=\"2\" points=\"") != std::string::npos);  // tab10, in order
    CHECK(svg.find("stroke=\"#ff7f0e\" stroke-width=\"2\" points=\"") != std::string::npos);
    // y spans 0..1 padded by 4%: ticks 0, 0.5, 1 (three); x 0..2: ticks 0, 0.5, ..., 2 (five); each with a mark.
    CHECK(count_of(svg, ">0.0</text>") == 2);
    CHECK(count_of(svg, ">0.5</text>") == 2);
    CHECK(count_of(svg, ">1.0</text>") == 2);
    CHECK(count_of(svg, ">1.5</text>") == 1);
    CHECK(count_of(svg, ">2.0</text>") == 1);
    CHECK(count_of(svg, "stroke=\"#1f2430\"/>") == 3 + 5);  // the tick marks, in ink
    // The legend label is wrapped to the legend's width at 400 px, after the space, every character kept.
    CHECK(svg.find(">T-shirt &amp; </tspan><tspan x=\"") != std::string::npos);
    CHECK(svg.find(">top</tspan></text>") != std::string::npos);
    CHECK(svg.find(">p &lt;path&gt;</tspan>") != std::string::npos);
    CHECK(svg.find("rotate(-90)\" text-anchor=\"middle\"") != std::string::npos);  // the y label along the axis
    // The first point of series 0 (0, 0) is the plot area's left edge: the same x as the y axis line.
    const size_t axis = svg.find("<path d=\"M");
    const std::string left = svg.substr(axis + 10, svg.find(' ', axis + 10) - axis - 10);
    CHECK(svg.find("points=\"" + left + ",") != std::string::npos);

    p.series[1].y.push_back(NAN);
    p.series[1].x.push_back(3);
    CHECK_THROWS_WITH_AS(gb::explain::render_line_plot_svg(p), doctest::Contains("series 'b' has a non-finite value at point 2"), gb::Error);
    p.series[1].y.back() = 0;
    p.series[1].x.pop_back();
    CHECK_THROWS_WITH_AS(gb::explain::render_line_plot_svg(p), doctest::Contains("series 'b' has 2 x and 3 y values"), gb::Error);
    p.series[1].y.pop_back();
    CHECK_THROWS_WITH_AS(gb::explain::render_line_plot_svg(p, 150, 300), doctest::Contains("below 200x150"), gb::Error);

    gb::explain::Report r;
    gb::explain::ReportSection s;
    s.title = "path";
    s.svg_figures.emplace_back("probabilities", gb::explain::render_line_plot_svg(p));
    r.sections.push_back(s);
    const std::string html = gb::explain::render_html(r);
    CHECK(html.find("<figure class=\"plot\"><svg xmlns=") != std::string::npos);
    CHECK(html.find("</svg>\n<figcaption>probabilities</figcaption></figure>") != std::string::npos);
}

TEST_CASE("line plots as SVG: categorical x names every tick in order, turned when they do not fit") {
    gb::explain::LinePlot p;
    p.title = "Cascading randomisation";
    p.y_label = "Spearman of |map|";
    p.x_categories = {"classifier.6", "classifier.3", "classifier.0", "features.7", "features.5", "features.2", "features.0"};
    p.series.push_back({"saliency", {0, 1, 2, 3, 4, 5, 6}, {0.9, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05}});
    p.series.push_back({"random", {0, 1, 2, 3, 4, 5, 6}, {1, 1, 1, 1, 1, 1, 1}});
    const std::string wide = gb::explain::render_line_plot_svg(p);
    CHECK(xml_problem(wide) == "");
    size_t at = 0;
    for (const auto& name : p.x_categories) {  // every name once, in the order given, horizontal at 960 px
        const size_t next = wide.find(">" + name + "</text>", at);
        REQUIRE_MESSAGE(next != std::string::npos, name);
        CHECK(count_of(wide, ">" + name + "<") == 1);
        at = next;
    }
    CHECK(count_of(wide, "rotate(-45") == 0);
    // At 400 px the names no longer fit their slots: each is turned by 45 degrees about the end at its tick.
    const std::string narrow = gb::explain::render_line_plot_svg(p, 400, 300);
    CHECK(xml_problem(narrow) == "");
    CHECK(count_of(narrow, "text-anchor=\"end\" font-size=\"13.00\" transform=\"rotate(-45") == p.x_categories.size());
    // Numeric x tick labels (-0.5 .. 6.5 would give 0, 2, 4, 6) are not drawn on a categorical axis.
    for (const char* number : {">0</text>", ">2</text>", ">4</text>", ">6</text>"}) CHECK(narrow.find(number) == std::string::npos);

    p.series[0].x[2] = 2.5;
    CHECK_THROWS_WITH_AS(gb::explain::render_line_plot_svg(p),
                         doctest::Contains("series 'saliency' has x = 2.5 at point 2, not the index of one of the 7 x categories"),
                         gb::Error);
    p.series[0].x[2] = 7;
    CHECK_THROWS_AS(gb::explain::render_line_plot_svg(p), gb::Error);
}

TEST_CASE("line plots as SVG: long titles wrap, a long legend makes the picture taller") {
    gb::explain::LinePlot p;
    p.title = "A title far too long for one line of a picture that is only four hundred pixels wide";
    for (int i = 0; i < 20; ++i) p.series.push_back({"series " + std::to_string(i), {0, 1}, {0, static_cast<double>(i)}});
    const std::string svg = gb::explain::render_line_plot_svg(p, 400, 200);
    CHECK(xml_problem(svg) == "");
    const size_t title = svg.find("font-weight=\"bold\"");
    REQUIRE(title != std::string::npos);
    CHECK(count_of(svg.substr(title, svg.find("</text>", title) - title), "<tspan") >= 2);
    // 20 legend rows of 16 + 6 px do not fit 200 px: the height grows to hold them all.
    const size_t h = svg.find("height=\"");
    CHECK(std::stod(svg.substr(h + 8)) > 20 * 22);
    CHECK(count_of(svg, "<polyline") == 20);
}

TEST_CASE("line plots as SVG: whole-number x (epochs, steps) is ticked at whole numbers only") {
    const gb::explain::LinePlot p{"", "epoch", "%", {{"accuracy", {1, 2, 3}, {80, 85, 86}}}};
    const std::string svg = gb::explain::render_line_plot_svg(p, 720, 360);
    for (const char* tick : {">1</text>", ">2</text>", ">3</text>"}) CHECK_MESSAGE(count_of(svg, tick) == 1, tick);
    CHECK(svg.find(">1.5</text>") == std::string::npos);
    CHECK(svg.find(">2.5</text>") == std::string::npos);
}
