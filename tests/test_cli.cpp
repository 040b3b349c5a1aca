// cli/: the `glassbox` program end to end on small data: help, bad flags,
// train -> eval, and errors that name the problem with a non-zero exit.
#include <filesystem>
#include <fstream>

#include <stb_image_write.h>

#include "cli_run.h"
#include "idx_writer.h"
#include "io/image.h"
#include "io/npy.h"

using namespace gb::testing;

TEST_CASE("cli: help and bad flags") {
    const Run help = run("train --help");
    CHECK(help.code == 0);
    CHECK(help.out.find("--epochs") != std::string::npos);
    CHECK(help.out.find("--optimizer") != std::string::npos);
    const Run bogus = run("train --bogus 3");
    CHECK(bogus.code != 0);
    CHECK(bogus.out.find("--bogus") != std::string::npos);
    const Run opt = run("train --optimizer rmsprop");
    CHECK(opt.code != 0);
    CHECK(opt.out.find("rmsprop") != std::string::npos);
    const Run none = run("");
    CHECK(none.code != 0);
    const Run missing = run("eval --checkpoint /nonexistent/model.safetensors");
    CHECK(missing.code != 0);
    CHECK(missing.out.find("/nonexistent/model.safetensors") != std::string::npos);
    const Run cuda = run("train --device cuda:7 --data-dir /nonexistent");
    CHECK(cuda.code != 0);
    CHECK(cuda.out.find("CUDA") != std::string::npos);
    const Run info = run("info");
    CHECK(info.code == 0);
    CHECK(info.out.find("self-check") != std::string::npos);
    CHECK(info.out.find(": OK") != std::string::npos);
}

TEST_CASE("cli: train then eval on a small IDX dataset") {
    TempDir dir("cli");
    write_fake_mnist(dir.path(), 60, 30, 28, true);
    const std::string out = dir.path("run");
    const Run tr = run("train --data-dir " + dir.path() + " --epochs 2 --batch-size 20 --lr 0.02 --threads 1 --out " + out);
    INFO(tr.out);
    REQUIRE(tr.code == 0);
    CHECK(tr.out.find("epoch 2: train loss") != std::string::npos);
    CHECK(std::filesystem::exists(out + "/model.safetensors"));
    CHECK(std::filesystem::exists(out + "/resume.safetensors"));
    CHECK(std::filesystem::exists(out + "/metrics.csv"));
    const Run ev = run("eval --checkpoint " + out + "/model.safetensors --data-dir " + dir.path());
    INFO(ev.out);
    REQUIRE(ev.code == 0);
    CHECK(ev.out.find("accuracy: ") != std::string::npos);
    CHECK(ev.out.find("30 images") != std::string::npos);
    CHECK(ev.out.find("| Ankle boot |") != std::string::npos);

    // explain: dataset samples and an image file of another size and colour, several methods.
    std::vector<uint8_t> rgb(40 * 40 * 3, 90);
    gb::io::save_png(dir.path("shirt.png"), rgb.data(), 40, 40, 3);
    const std::string ex = dir.path("explain");
    const Run e1 = run("explain --checkpoint " + out + "/model.safetensors --data-dir " + dir.path() +
                       " --index 0 3 --method lrp:epsilon-plus-flat --method gradcam --method ig:steps=4 --out " + ex);
    INFO(e1.out);
    REQUIRE(e1.code == 0);
    CHECK(e1.out.find("report: " + ex + "/report.html") != std::string::npos);
    for (const char* f : {"report.html", "input_0.png", "1_lrp_epsilon-plus-flat.png", "0_gradcam_overlay.png"})
        CHECK(std::filesystem::exists(ex + "/" + f));
    const gb::Tensor relevance = gb::io::load_npy(ex + "/lrp_epsilon-plus-flat.npy");
    CHECK(relevance.shape() == gb::Shape{2, 1, 28, 28});
    const Run e2 = run("explain --checkpoint " + out + "/model.safetensors --image " + dir.path("shirt.png") +
                       " --method saliency --target 3 --out " + ex);
    INFO(e2.out);
    REQUIRE(e2.code == 0);
    CHECK(e2.out.find("converted to grey") != std::string::npos);
    CHECK(e2.out.find("resized to 28x28") != std::string::npos);
    const Run e3 = run("explain --checkpoint " + out + "/model.safetensors --index 0 --data-dir " + dir.path() +
                       " --method occlude --out " + ex);
    CHECK(e3.code != 0);
    CHECK(e3.out.find("unknown method 'occlude'") != std::string::npos);
    const Run e5 = run("explain --checkpoint " + out + "/model.safetensors --index 0 --data-dir " + dir.path() +
                       " --method occlusion:window=2 --method random --out " + ex);
    INFO(e5.out);
    CHECK(e5.code == 0);
    CHECK(std::filesystem::exists(ex + "/0_occlusion_window_2.png"));
    const Run e4 = run("explain --checkpoint " + out + "/model.safetensors --index 99 --data-dir " + dir.path() +
                       " --method saliency --out " + ex);
    CHECK(e4.code != 0);
    CHECK(e4.out.find("--index 99 is outside the 30 test images") != std::string::npos);
    const Run list = run("explain --list");
    CHECK(list.code == 0);
    CHECK(list.out.find("lrp:epsilon-gamma-box") != std::string::npos);

    // evaluate: every metric on a few images, the files it writes, and clear errors.
    const std::string evd = dir.path("evaluate");
    const Run v1 = run("evaluate --checkpoint " + out + "/model.safetensors --data-dir " + dir.path() +
                       " --samples 6 --batch 4 --method saliency --method random --metric aopc --metric deletion"
                       " --metric insertion --metric randomisation --metric sensitivity --metric conservation --replacement noise --replacement black"
                       " --steps 4 --aopc-steps 4 --sensitivity-samples 2 --threads 1 --out " + evd);
    INFO(v1.out);
    REQUIRE(v1.code == 0);
    CHECK(v1.out.find("| saliency |") != std::string::npos);
    CHECK(v1.out.find("up to features.0") != std::string::npos);
    for (const char* f : {"results.csv", "results.md", "curves.csv", "report.html", "aopc-noise_curves.png", "aopc-black_curves.png", "deletion_curves.png",
                          "insertion_curves.png", "randomisation.png"})
        CHECK(std::filesystem::exists(evd + "/" + f));
    const Run v2 = run("evaluate --checkpoint " + out + "/model.safetensors --data-dir " + dir.path() +
                       " --samples 99 --method saliency --out " + evd);
    CHECK(v2.code != 0);
    CHECK(v2.out.find("--samples 99 exceeds the 30 test images") != std::string::npos);
    const Run v3 = run("evaluate --checkpoint " + out + "/model.safetensors --data-dir " + dir.path() +
                       " --samples 2 --method saliency --metric faithfulness --out " + evd);
    CHECK(v3.code != 0);
    CHECK(v3.out.find("faithfulness") != std::string::npos);

    // visualize: activation maximisation per class as a grid, channel importance, clear errors.
    const std::string vis = dir.path("visualize");
    const Run z1 = run("visualize --checkpoint " + out + "/model.safetensors --class 0 --class 9 --steps 3 --importance 8 --data-dir " +
                       dir.path() + " --threads 1 --out " + vis);
    INFO(z1.out);
    REQUIRE(z1.code == 0);
    CHECK(z1.out.find("Ankle boot") != std::string::npos);
    CHECK(z1.out.find("features.0") != std::string::npos);
    CHECK(std::filesystem::exists(vis + "/activation_maximisation.png"));
    CHECK(std::filesystem::exists(vis + "/channel_importance.csv"));
    const Run z2 = run("visualize --checkpoint " + out + "/model.safetensors --class 12 --out " + vis);
    CHECK(z2.code != 0);
    CHECK(z2.out.find("--class 12 is outside the model's 10 classes") != std::string::npos);
    const Run z3 = run("visualize --checkpoint " + out + "/model.safetensors --layer features.0 --out " + vis);
    CHECK(z3.code != 0);
    CHECK(z3.out.find("--layer and --channel go together") != std::string::npos);

    const Run again = run("train --data-dir " + dir.path() + " --epochs 2 --out " + out + " --resume " + out +
                          "/resume.safetensors");
    CHECK(again.code != 0);
    CHECK(again.out.find("already finished 2 epochs") != std::string::npos);
    const Run wrong = run("train --data-dir " + dir.path() + " --model vgg11 --epochs 3 --out " + out + " --resume " +
                          out + "/resume.safetensors");
    CHECK(wrong.code != 0);
    CHECK(wrong.out.find("continues a 'vgg-mini' run") != std::string::npos);
}

namespace {
std::string read_text(const std::string& path) {
    std::ifstream f(path);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}
}  // namespace

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
    std::ofstream(dir.path("fake.png")) << "not an image";
    fails("--image " + dir.path("fake.png"), "cannot decode image");
}
