// io/transforms + io/resample: torchvision's evaluation transform (antialiased
// resize, centre crop, normalisation) against reference values from
// torchvision 0.14 / torch 1.13 / PIL 9.4 (Debian 12), stored in
// tests/data/transforms/ by tests/python/make_transform_reference.py; the
// option syntax and its errors; the thin-outline case that point sampling loses.
#include <cmath>

#include "io/image.h"
#include "io/npy.h"
#include "io/resample.h"
#include "io/transforms.h"
#include "png_writer.h"
#include "testing.h"

using namespace gb;
using namespace gb::testing;

namespace {
Tensor reference(const std::string& name) { return io::load_npy(data_file("transforms/" + name)); }

// The photo of the reference script as an 8-bit RGB PNG.
std::string write_photo(const TempDir& dir) {
    const Tensor p = reference("photo_61x83.npy");  // int32 [61, 83, 3]
    const auto v = p.to_vector<int32_t>();
    std::vector<uint16_t> samples(v.begin(), v.end());
    write_png(dir.path("photo.png"), samples, 83, 61, 3, 8);
    return dir.path("photo.png");
}

std::vector<float> normalized(const Tensor& img, const io::Normalization& n) {
    std::vector<float> v = img.to_vector<float>();
    const size_t plane = v.size() / n.mean.size();
    for (size_t i = 0; i < v.size(); ++i) v[i] = (v[i] - n.mean[i / plane]) / n.stddev[i / plane];
    return v;
}
}  // namespace

TEST_CASE("resize_antialiased matches torchvision's resize(antialias=True) on float tensors") {
    // Reference: torchvision.transforms.functional.resize(x, [H, W], BILINEAR, antialias=True)
    // (torch's _upsample_bilinear2d_aa, PIL's ImagingResample arithmetic in float32).
    // Tolerance 1e-5 on [0, 1] values (float32 accumulation order; measured <= 2.1e-6).
    const Tensor x = reference("input_37x53.npy");
    for (const auto& size : {std::pair{16, 20}, {50, 70}, {20, 90}, {37, 20}, {5, 53}}) {
        const int h = size.first, w = size.second;  // not a structured binding: clang 14 cannot capture one
        CAPTURE(h);
        CAPTURE(w);
        const Tensor ref = reference("resize_" + std::to_string(h) + "x" + std::to_string(w) + ".npy");
        const Tensor y = io::resize_antialiased(x, h, w);
        REQUIRE(y.shape() == ref.shape());
        CHECK(max_abs_diff(y.to_vector<float>(), ref.to_vector<float>()) < 1e-5f);
    }
    // Leading dimensions are independent planes; the same size is a copy.
    CHECK(io::resize_antialiased(x.view(Shape{1, 3, 37, 53}), 16, 20).shape() == Shape{1, 3, 16, 20});
    CHECK(max_abs_diff(io::resize_antialiased(x, 37, 53).to_vector<float>(), x.to_vector<float>()) == 0.f);
}

TEST_CASE("evaluation transform: Resize(32) + CenterCrop(24) + Normalize as torchvision") {
    TempDir dir("transforms");
    const io::Normalization imagenet = io::Normalization::imagenet();
    const Tensor img = io::load_image(write_photo(dir));
    CHECK(img.shape() == Shape{3, 61, 83});
    CHECK(io::resized_size(61, 83, io::ResizeSpec::parse("32")) == std::pair<int64_t, int64_t>{32, 43});
    const Tensor resized = io::resize_image(img, io::ResizeSpec::parse("32"));
    CHECK(resized.shape() == Shape{3, 32, 43});
    // (43 - 24) / 2 = 9.5: torchvision's round() goes to the even 10.
    const Tensor cropped = io::center_crop(resized, 24, 24);
    const std::vector<float> ours = normalized(cropped, imagenet);

    // Reference 1: the same steps on the float tensor (ToTensor first). Tolerance 2e-5 after
    // normalisation (1e-5 on [0, 1] pixels divided by std >= 0.224).
    CHECK(max_abs_diff(ours, reference("eval_tensor.npy").to_vector<float>()) < 2e-5f);

    // Reference 2: torchvision's usual PIL pipeline, which rounds to 8 bits after each
    // resize pass: within 1/255 of a pixel value (measured 0.86/255).
    const auto pil = reference("eval_pil.npy").to_vector<float>();
    float worst = 0.f;
    for (size_t i = 0; i < pil.size(); ++i)
        worst = std::max(worst, std::fabs(ours[i] - pil[i]) * imagenet.stddev[i / (24 * 24)]);
    CHECK(worst <= 1.f / 255.f);

    // Reference 3: the grey 28x28 model's path, PIL convert("L") -> Resize(28) -> CenterCrop(28)
    // -> ToTensor: within 1/255 (PIL rounds the luma and both passes to 8 bits; measured 0.86/255).
    const Tensor grey = io::center_crop(io::resize_image(io::load_image(dir.path("photo.png"), 1), io::ResizeSpec::parse("28")), 28, 28);
    CHECK(grey.shape() == Shape{1, 28, 28});
    CHECK(max_abs_diff(grey.to_vector<float>(), reference("eval_pil_grey.npy").to_vector<float>()) <= 1.f / 255.f);
}

TEST_CASE("a 2-pixel outline of a 280x280 image survives the resize to 28x28") {
    // White 2-pixel frame on black. Every output pixel averages a 20-pixel window
    // (triangle of half-width 10): a border pixel gets the frame's weight
    // (0.55 + 0.65) / 8.75 = 0.137142..., exactly 0 inside. Point sampling
    // (bilinear without antialiasing) would sample at 5 +- 0.5 and lose the frame.
    TempDir dir("outline");
    std::vector<uint16_t> px(280 * 280, 0);
    for (int y = 0; y < 280; ++y)
        for (int x = 0; x < 280; ++x)
            if (x < 2 || y < 2 || x >= 278 || y >= 278) px[static_cast<size_t>(y * 280 + x)] = 255;
    write_png(dir.path("outline.png"), px, 280, 280, 1, 8);
    const Tensor img = io::load_image(dir.path("outline.png"), 1);
    const Tensor small = io::center_crop(io::resize_image(img, io::ResizeSpec::parse("28")), 28, 28);
    REQUIRE(small.shape() == Shape{1, 28, 28});
    const auto v = small.to_vector<float>();
    const float edge = 1.2f / 8.75f;
    for (int y = 0; y < 28; ++y)
        for (int x = 0; x < 28; ++x) {
            const float p = v[static_cast<size_t>(y * 28 + x)];
            const bool corner = (x == 0 || x == 27) && (y == 0 || y == 27);
            const bool border = x == 0 || y == 0 || x == 27 || y == 27;
            CAPTURE(x);
            CAPTURE(y);
            if (corner)  // both passes see the frame: 1 - (1 - edge)^2
                CHECK(p == doctest::Approx(1.f - (1.f - edge) * (1.f - edge)).epsilon(1e-5));
            else if (border)
                CHECK(p == doctest::Approx(edge).epsilon(1e-5));
            else
                CHECK(std::fabs(p) < 1e-7f);
        }
}

TEST_CASE("center_crop uses torchvision's offsets and refuses a crop larger than the image") {
    std::vector<float> v(6 * 8);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
    const Tensor img = from_vector(v, Shape{1, 6, 8});
    // top = round(3 / 2) = 2 (half to even), left = round(5 / 2) = 2.
    const Tensor c = io::center_crop(img, 3, 3);
    CHECK(c.to_vector<float>() == std::vector<float>{18, 19, 20, 26, 27, 28, 34, 35, 36});
    // top = round(1 / 2) = 0, left = round(1.5) = 2.
    CHECK(io::center_crop(img, 5, 5).to_vector<float>()[0] == 2.f);
    CHECK(io::center_crop(img, 6, 8).to_vector<float>() == v);
    CHECK_THROWS_WITH_AS(io::center_crop(img, 7, 3), doctest::Contains("crop 3x7 is larger than the 8x6 image"), Error);
}

TEST_CASE("resize, crop and normalize option syntax") {
    CHECK(io::ResizeSpec::parse("256").shorter == 256);
    CHECK(io::ResizeSpec::parse("0").off());
    const io::ResizeSpec s = io::ResizeSpec::parse("28x20");
    CHECK((s.width == 28 && s.height == 20 && s.shorter == 0));
    CHECK(io::resized_size(37, 53, s) == std::pair<int64_t, int64_t>{20, 28});
    // torchvision: the longer side is int(size * long / short).
    CHECK(io::resized_size(300, 200, io::ResizeSpec::parse("256")) == std::pair<int64_t, int64_t>{384, 256});
    CHECK(io::resized_size(37, 53, io::ResizeSpec::parse("32")) == std::pair<int64_t, int64_t>{32, 45});
    CHECK(io::resized_size(37, 53, io::ResizeSpec::parse("0")) == std::pair<int64_t, int64_t>{37, 53});
    for (const char* bad : {"", "abc", "-3", "12x", "x12", "0x5", "1.5"})
        CHECK_THROWS_WITH_AS(io::ResizeSpec::parse(bad), doctest::Contains("bad --resize"), Error);
    CHECK(io::CropSpec::parse("224").width == 224);
    CHECK(io::CropSpec::parse("0").off());
    CHECK(io::CropSpec::parse("30x20").height == 20);
    CHECK_THROWS_WITH_AS(io::CropSpec::parse("big"), doctest::Contains("bad --crop 'big'"), Error);

    const io::Normalization n = io::Normalization::parse("0.485,0.456,0.406/0.229,0.224,0.225", 3);
    CHECK(n.mean == io::Normalization::imagenet().mean);
    CHECK(n.stddev == io::Normalization::imagenet().stddev);
    CHECK(io::Normalization::parse("0.5/0.25", 3).stddev == std::vector<float>{0.25f, 0.25f, 0.25f});
    CHECK(io::Normalization::parse("none", 1).mean == std::vector<float>{0.f});
    CHECK(io::Normalization::parse("0.2860/0.3530", 1).mean == std::vector<float>{0.286f});
    CHECK_THROWS_WITH_AS(io::Normalization::parse("0.5", 3), doctest::Contains("expected MEAN/STD"), Error);
    CHECK_THROWS_WITH_AS(io::Normalization::parse("a/b", 3), doctest::Contains("'a' is not a number"), Error);
    CHECK_THROWS_WITH_AS(io::Normalization::parse("0.1,0.2/0.3", 3), doctest::Contains("2 values for a model with 3"), Error);
    CHECK_THROWS_WITH_AS(io::Normalization::parse("0.5/0", 1), doctest::Contains("must be positive"), Error);
    CHECK_THROWS_WITH_AS(io::Normalization::parse("0.5/0.5/0.5", 1), doctest::Contains("bad --normalize"), Error);
    CHECK_THROWS_WITH_AS(io::Normalization::parse("0.5,/0.5", 1), doctest::Contains("bad --normalize"), Error);
}
