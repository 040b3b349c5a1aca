// cli/: `glassbox explain` on image files end to end: the evaluation transform
// (antialiased resize, centre crop), alpha and colour conversions with their
// notes in report.html, --labels, --target by class name, and the errors.
#include <stb_image_write.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "cli_run.h"
#include "idx_writer.h"
#include "io/image.h"
#include "models/checkpoint.h"
#include "png_writer.h"
#include "temp_dir.h"

using namespace gb::testing;

TEST_CASE("cli: explain photos (resize, crop, notes in the report), --labels and --target NAME") {
    TempDir dir("cli-photos");
    write_fake_mnist(dir.path(), 40, 10, 28, false);
    const std::string out = dir.path("run");
    const Run tr = run("train --data-dir " + dir.path() + " --epochs 1 --batch-size 20 --threads 1 --out " + out);
    INFO(tr.out);
    REQUIRE(tr.code == 0);
    const std::string explain = "explain --checkpoint " + out + "/model.safetensors --method saliency --threads 1 ";

    // A 280x280 RGBA image with a white 2-pixel frame on black: composited, converted to
    // grey, resized (antialiased) to 28x28; the frame survives in the image the model saw.
    std::vector<uint8_t> frame(280 * 280 * 4, 0);
    for (int y = 0; y < 280; ++y)
        for (int x = 0; x < 280; ++x) {
            uint8_t* p = frame.data() + (y * 280 + x) * 4;
            const bool edge = x < 2 || y < 2 || x >= 278 || y >= 278;
            p[0] = p[1] = p[2] = edge ? 255 : 0;
            p[3] = 255;
        }
    frame[3] = 0;  // one transparent pixel: the alpha channel is real
    gb::io::save_png(dir.path("frame.png"), frame.data(), 280, 280, 4);
    const std::string ex = dir.path("ex");
    const Run e1 = run(explain + "--image " + dir.path("frame.png") + " --upscale 1 --out " + ex);
    INFO(e1.out);
    REQUIRE(e1.code == 0);
    const gb::Tensor seen = gb::io::load_image(ex + "/input_0.png", 1);
    REQUIRE(seen.shape() == gb::Shape{1, 28, 28});
    const auto v = seen.to_vector<float>();
    for (int i = 1; i < 27; ++i) {
        CHECK(v[static_cast<size_t>(i)] > 0.1f);                // top row: the frame, about 0.137
        CHECK(v[static_cast<size_t>(27 * 28 + i)] > 0.1f);      // bottom row
        CHECK(v[static_cast<size_t>(i * 28)] > 0.1f);           // left column
        CHECK(v[static_cast<size_t>(14 * 28 + i)] < 0.01f);     // inside: black
    }
    const std::string html = read_text(ex + "/report.html");
    for (const char* note : {"RGBA image: composited onto white", "RGB converted to grey",
                             "280x280 resized to 28x28 (antialiased; shorter side 28, aspect ratio kept)"}) {
        CHECK(e1.out.find(note) != std::string::npos);
        CHECK(html.find(note) != std::string::npos);
    }
    CHECK(html.find("class=\"notes\"") != std::string::npos);
    const auto meta = nlohmann::json::parse(read_text(ex + "/run.json"));  // the notes are in the run's metadata too
    CHECK(meta.at("inputs").at(0).at("notes").dump().find("RGBA image: composited onto white") != std::string::npos);

    // A 60x40 BMP and a JPEG: the shorter side goes to 28, then a centre crop (both noted);
    // --resize WxH stretches; the class names come from the checkpoint (Fashion-MNIST's).
    std::vector<uint8_t> rgb(60 * 40 * 3, 128);
    REQUIRE(stbi_write_bmp(dir.path("wide.bmp").c_str(), 60, 40, 3, rgb.data()));
    REQUIRE(stbi_write_jpg(dir.path("wide.jpg").c_str(), 60, 40, 3, rgb.data(), 95));
    const Run e2 = run(explain + "--image " + dir.path("wide.bmp") + " " + dir.path("wide.jpg") +
                       " --target Sandal --out " + ex);
    INFO(e2.out);
    REQUIRE(e2.code == 0);
    CHECK(e2.out.find("60x40 resized to 42x28") != std::string::npos);
    CHECK(e2.out.find("centre crop 28x28 of the 42x28 image") != std::string::npos);
    CHECK(read_text(ex + "/report.html").find("Sandal (5)") != std::string::npos);
    const Run e3 = run(explain + "--image " + dir.path("wide.bmp") + " --resize 28x28 --target T-shirt/top-Trouser --out " + ex);
    INFO(e3.out);
    REQUIRE(e3.code == 0);
    CHECK(e3.out.find("stretched, aspect ratio not kept") != std::string::npos);
    CHECK(read_text(ex + "/report.html").find("T-shirt/top (0) versus Trouser (1)") != std::string::npos);

    // --labels: names with '-' in them, a trailing blank line; a contrast of two such names.
    std::ofstream(dir.path("labels.txt")) << "cat-like\ndog\nbird\nfish\nfrog\nhorse\nship\ntruck\nplane\nbus\n\n";
    const Run e4 = run(explain + "--image " + dir.path("wide.bmp") + " --labels " + dir.path("labels.txt") +
                       " --target cat-like-dog --out " + ex);
    INFO(e4.out);
    REQUIRE(e4.code == 0);
    CHECK(e4.out.find("overrides the checkpoint's class names") != std::string::npos);
    const std::string html4 = read_text(ex + "/report.html");
    CHECK(html4.find("cat-like (0) versus dog (1)") != std::string::npos);

    // Errors name the problem.
    auto fails = [&](const std::string& args, const std::string& message) {
        const Run r = run(explain + args + " --out " + ex);
        INFO(r.out);
        CHECK(r.code != 0);
        CHECK(r.out.find(message) != std::string::npos);
    };
    std::ofstream(dir.path("nine.txt")) << "a\nb\nc\nd\ne\nf\ng\nh\ni\n";
    fails("--image " + dir.path("wide.bmp") + " --labels " + dir.path("nine.txt"),
          "--labels '" + dir.path("nine.txt") + "' has 9 class names (one per line), the model has 10 classes");
    fails("--image " + dir.path("wide.bmp") + " --target Sandel", "close names: 'Sandal'");
    fails("--image " + dir.path("wide.bmp") + " --normalize 0.5,0.5", "bad --normalize '0.5,0.5'");
    fails("--image " + dir.path("wide.bmp") + " --crop 40", "--crop 40x40 is larger than");
    fails("--image " + dir.path("wide.bmp") + " --resize 0 --crop 0", "the model takes 28x28");
    fails("--image " + dir.path("nothere.png"), "nothere.png': no such file");
    fails("--index 0 --data-dir " + dir.path() + " --crop 20", "--resize and --crop apply to --image files only");
    std::ofstream(dir.path("fake.png")) << "not an image";
    fails("--image " + dir.path("fake.png"), "cannot decode image");
}

TEST_CASE("cli: a 224x224 RGB model gets torchvision's Resize(256) + CenterCrop(224) + ImageNet normalisation") {
    TempDir dir("cli-224");
    // A tiny VGG of 224x224 RGB input (five pools to 7x7), saved without normalisation or class names.
    gb::models::VggConfig cfg;
    cfg.name = "vgg-tiny";
    cfg.features = {4, 0, 4, 0, 4, 0, 4, 0, 4, 0};
    cfg.hidden = {8};
    cfg.in_channels = 3;
    cfg.input_size = 224;
    cfg.num_classes = 3;
    gb::models::Vgg model(cfg);
    const std::string ck = dir.path("tiny.safetensors");
    gb::models::save_checkpoint(ck, model);
    const std::string explain = "explain --checkpoint " + ck + " --method saliency --threads 1 --upscale 1 ";

    std::vector<uint8_t> rgb(300 * 200 * 3);
    for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>((i * 7) % 256);
    REQUIRE(stbi_write_jpg(dir.path("photo.jpg").c_str(), 300, 200, 3, rgb.data(), 90));
    const std::string ex = dir.path("ex");
    const Run e1 = run(explain + "--image " + dir.path("photo.jpg") + " --out " + ex);
    INFO(e1.out);
    REQUIRE(e1.code == 0);
    const std::string html = read_text(ex + "/report.html");
    for (const char* note : {"300x200 resized to 384x256 (antialiased; shorter side 256, aspect ratio kept)",
                             "centre crop 224x224 of the 384x256 image"}) {
        CHECK(e1.out.find(note) != std::string::npos);
        CHECK(html.find(note) != std::string::npos);
    }
    CHECK(e1.out.find("using ImageNet's mean/std 0.485,0.456,0.406 / 0.229,0.224,0.225") != std::string::npos);
    CHECK(html.find("0.485,0.456,0.406 / 0.229,0.224,0.225 (ImageNet default)") != std::string::npos);
    CHECK(html.find("resize: shorter side 256 (antialiased, as torchvision&#39;s Resize); crop: centre 224x224") !=
          std::string::npos);
    CHECK(gb::io::load_image(ex + "/input_0.png").shape() == gb::Shape{3, 224, 224});

    // A 16-bit grey PNG into the RGB model, --normalize and --labels with a '-' name as the target.
    std::vector<uint16_t> grey(240 * 240);
    for (size_t i = 0; i < grey.size(); ++i) grey[i] = static_cast<uint16_t>(i * 37);
    write_png(dir.path("grey16.png"), grey, 240, 240, 1, 16);
    std::ofstream(dir.path("three.txt")) << "a\nb-c\nd\n";
    const Run e2 = run(explain + "--image " + dir.path("grey16.png") + " --normalize 0.5/0.5 --labels " +
                       dir.path("three.txt") + " --target b-c --out " + ex);
    INFO(e2.out);
    REQUIRE(e2.code == 0);
    const std::string html2 = read_text(ex + "/report.html");
    for (const char* text : {"16-bit image: values scaled to [0, 1] by 1/65535", "grey converted to RGB",
                             "0.5,0.5,0.5 / 0.5,0.5,0.5 (--normalize)", "b-c (1)", "240x240 resized to 256x256"})
        CHECK(html2.find(text) != std::string::npos);

    // Without the crop the image is not the model's size.
    const Run e3 = run(explain + "--image " + dir.path("photo.jpg") + " --resize 224 --crop 0 --out " + ex);
    CHECK(e3.code != 0);
    CHECK(e3.out.find("is 336x224 after --resize shorter side 224 and --crop off; the model takes 224x224") !=
          std::string::npos);
}
