// cli/: the `glassbox` program against bad input, as a hostile or careless user
// would give it. A generator below writes malformed files (damaged checkpoints,
// metadata and resume files, non-finite weights, truncated files) into a
// temporary folder; a table of command lines then asserts for each case the
// exit status (2: the command line does not parse, 1: anything else), that the
// one-line "glassbox: error:" message names the problem, that nothing aborted,
// and that a failed command left no output folder behind. Valid but unusual
// inputs must succeed. The summary (tried / clear / crashed / silent /
// misleading) is printed; every case found by hand or by fuzzing is added here.
#include <filesystem>
#include <iostream>

#include "cli_run.h"
#include "idx_writer.h"
#include "io/file_util.h"
#include "io/image.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "models/registry.h"

using namespace gb;
using namespace gb::testing;
namespace fs = std::filesystem;

namespace {

// A copy of `src` with metadata entries set (value) or removed (empty value).
void rewrite_metadata(const std::string& src, const std::string& dst, const std::map<std::string, std::string>& changes) {
    io::SafeTensors f = io::load_safetensors(src);
    for (const auto& [k, v] : changes) {
        if (v.empty()) f.metadata.erase(k);
        else f.metadata[k] = v;
    }
    io::save_safetensors(dst, models::NamedTensors(f.tensors.begin(), f.tensors.end()), f.metadata);
}

void write_text_file(const std::string& path, const std::string& text) {
    write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

// The malformed inputs, all in `dir`.
void generate_bad_files(const TempDir& dir) {
    write_fake_mnist(dir.path(), 40, 20, 28, true);
    auto model = models::make_model("vgg-mini", {1, 28, 10});
    models::save_checkpoint(dir.path("model.safetensors"), *model, models::normalization_metadata({0.5f}, {0.25f}));
    const std::string good = dir.path("model.safetensors");
    rewrite_metadata(good, dir.path("size_garbage.safetensors"), {{"input_size", "28abc"}});
    rewrite_metadata(good, dir.path("size_huge.safetensors"), {{"input_size", "2147483648"}});
    rewrite_metadata(good, dir.path("bn_yes.safetensors"), {{"vgg.batch_norm", "yes"}});
    rewrite_metadata(good, dir.path("mean_nan.safetensors"), {{"normalize.mean", "nan"}});
    rewrite_metadata(good, dir.path("std_inf.safetensors"), {{"normalize.std", "inf"}});
    rewrite_metadata(good, dir.path("std_zero.safetensors"), {{"normalize.std", "0"}});
    // A diverged model: one NaN in the first convolution.
    {
        auto m = models::make_model("vgg-mini", {1, 28, 10});
        Tensor w = m->named_parameters()[0].second;
        std::vector<float> v = w.to_vector<float>();
        v[3] = std::nanf("");
        w.copy_from(from_vector(v, w.shape()));
        models::save_checkpoint(dir.path("nan.safetensors"), *m);
    }
    // Truncated and garbage checkpoints.
    const std::vector<uint8_t> bytes = io::read_file(good);
    write_bytes(dir.path("truncated.safetensors"), std::vector<uint8_t>(bytes.begin(), bytes.begin() + 200));
    write_bytes(dir.path("huge_header.safetensors"), {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'});
    write_text_file(dir.path("text.safetensors"), "not a checkpoint at all\n");
    write_text_file(dir.path("a_file"), "I am a file, not a folder\n");
    // An image-folder dataset with 3 classes (the model has 10).
    for (const char* split : {"train", "test"})
        for (const char* cls : {"a", "b", "c"}) {
            fs::create_directories(dir.path(std::string("three/") + split + "/" + cls));
            std::vector<uint8_t> grey(28 * 28, 100);
            io::save_png(dir.path(std::string("three/") + split + "/" + cls + "/0.png"), grey.data(), 28, 28, 1);
        }
    // Arrays of pixels: one NaN; values so large that the model's output overflows.
    std::vector<float> px(28 * 28, 0.5f);
    px[100] = std::nanf("");
    io::save_npy(dir.path("nan_pixel.npy"), from_vector(px, Shape{1, 1, 28, 28}));
    io::save_npy(dir.path("huge_pixels.npy"), full(Shape{1, 1, 28, 28}, 3e38f));
}

struct Case {
    std::string name, args;
    int code;                           // expected exit status
    std::vector<std::string> mentions;  // the message must name these
    std::string out{};                  // an output folder that must not exist afterwards ("" = none)
};

struct Summary {
    int tried = 0, clear = 0, crashed = 0, silent = 0, misleading = 0;
};

void check_case(const Case& c, Summary& s) {
    const Run r = run(c.args);
    ++s.tried;
    INFO("case '" << c.name << "': glassbox " << c.args << "\n" << r.out);
    const bool crashed = r.code < 0 || r.code > 2 || r.out.find("terminate called") != std::string::npos ||
                         r.out.find("Sanitizer") != std::string::npos || r.out.find("runtime error:") != std::string::npos;
    bool named = r.out.find("glassbox: error: ") != std::string::npos;
    for (const auto& m : c.mentions) named = named && r.out.find(m) != std::string::npos;
    const bool left_behind = !c.out.empty() && fs::exists(c.out);
    if (crashed) ++s.crashed;
    else if (r.code == 0) ++s.silent;
    else if (r.code != c.code || !named || left_behind) ++s.misleading;
    else ++s.clear;
    CHECK_FALSE(crashed);
    CHECK(r.code == c.code);
    CHECK(named);
    CHECK_FALSE(left_behind);
}

}  // namespace

TEST_CASE("cli: bad input gets a clear error, never an abort, and leaves nothing behind") {
    TempDir dir("bad-input");
    generate_bad_files(dir);
    const std::string d = dir.path(), ck = dir.path("model.safetensors");
    auto out = [&](const std::string& name) { return dir.path("out-" + name); };
    const std::string data = " --data-dir " + d + " --threads 1";
    const std::string explain = "explain --checkpoint " + ck + data + " --index 0 --method saliency";
    const std::string evaluate = "evaluate --checkpoint " + ck + data + " --limit 2 --method saliency --metric deletion";
    const std::string train_in = "train --model vgg-mini --batch-size 20 --threads 1 --data-dir ";
    const std::string train = train_in + d + " --epochs 1";
    const std::string resume_with = train_in + d + " --epochs 2 --resume ";

    // The resume-file cases need a real resume file first.
    const Run first = run(train + " --out " + dir.path("run"));
    INFO(first.out);
    REQUIRE(first.code == 0);
    const std::string resume = dir.path("run/resume.safetensors");
    rewrite_metadata(resume, dir.path("resume_no_history.safetensors"), {{"train.history", ""}});
    rewrite_metadata(resume, dir.path("resume_epoch_text.safetensors"), {{"train.epoch", "one"}});
    rewrite_metadata(resume, dir.path("resume_no_rng.safetensors"), {{"rng.seed", ""}});
    rewrite_metadata(resume, dir.path("resume_history_garbage.safetensors"), {{"train.history", "[{\"epoch\": \"x\"}]"}});

    const std::vector<Case> cases = {
        // Usage errors (exit 2), CLI11's included, in the program's words.
        {"unknown option", "train --bogus 3", 2, {"--bogus"}},
        {"no command", "", 2, {"subcommand"}},
        {"missing file", "eval --checkpoint " + d + "/nope.safetensors", 2, {"nope.safetensors"}},
        {"batch size overflow", train + " --batch-size 99999999999 --out " + out("bs"), 2, {"--batch-size"}, out("bs")},
        {"batch size zero", train + " --batch-size 0", 2, {"--batch-size", "[1, 65536]"}},
        {"negative train limit", train + " --train-limit -5", 2, {"--train-limit"}},
        {"negative eval limit", "eval --checkpoint " + ck + data + " --limit -5", 2, {"--limit"}},
        {"epochs zero", train + " --epochs 0", 2, {"--epochs"}},
        {"lr nan", train + " --lr nan", 2, {"--lr"}},
        {"lr inf", train + " --lr inf", 2, {"--lr"}},
        {"momentum above 1", train + " --momentum 1.5", 2, {"--momentum"}},
        {"negative threads", explain + " --threads -1", 2, {"--threads"}},
        {"upscale huge", explain + " --upscale 1000", 2, {"--upscale"}},
        {"blur sigma 1e9", evaluate + " --blur-sigma 1e9", 2, {"--blur-sigma"}},
        {"blur sigma 1e30", evaluate + " --blur-sigma 1e30", 2, {"--blur-sigma"}},
        {"visualize blur sigma", "visualize --checkpoint " + ck + " --blur-sigma 1e30", 2, {"--blur-sigma"}},
        {"visualize objective", "visualize --checkpoint " + ck + " --objective max", 2, {"--objective"}},
        {"visualize negative tv", "visualize --checkpoint " + ck + " --tv -1", 2, {"--tv"}},
        {"ig steps overflow", explain + " --method ig:steps=4294967296 --out " + out("ig"), 1, {"ig:steps=4294967296", "[1, 100000]"},
         out("ig")},
        {"unknown method", evaluate + " --method occlude --out " + out("m"), 1, {"unknown method 'occlude'"}, out("m")},
        {"index negative", explain + " --index -1", 2, {"--index"}},
        // Bad values found after parsing (exit 1).
        {"device index huge", train + " --device cuda:99999999999 --out " + out("dev"), 1, {"cuda:99999999999"}, out("dev")},
        {"device name", train + " --device gpu --out " + out("gpu"), 1, {"bad device 'gpu'"}, out("gpu")},
        {"target huge", explain + " --target 99999999999 --out " + out("t1"), 1, {"99999999999"}, out("t1")},
        {"target wraps", explain + " --target 4294967299 --out " + out("t2"), 1, {"4294967299"}, out("t2")},
        {"target beyond classes", explain + " --target 12 --out " + out("t3"), 1, {"target class 12"}, out("t3")},
        {"index beyond dataset", explain + " --index 99999 --out " + out("i"), 1, {"99999"}, out("i")},
        {"counterfactual no input", "counterfactual --checkpoint " + ck + data + " --target 1 --out " + out("cf1"), 1,
         {"give one input"}, out("cf1")},
        {"counterfactual two inputs", "counterfactual --checkpoint " + ck + data + " --index 0 --array " + ck + " --target 1 --out " +
         out("cf2"), 1, {"give one input"}, out("cf2")},
        {"counterfactual target beyond classes", "counterfactual --checkpoint " + ck + data + " --index 0 --target 12 --out " +
         out("cf3"), 1, {"target class 12 is outside the model's 10 classes"}, out("cf3")},
        {"counterfactual target unknown name", "counterfactual --checkpoint " + ck + data + " --index 0 --target Shoe --out " +
         out("cf4"), 1, {"--target 'Shoe' is neither a class index nor a class name", "9 Ankle boot"}, out("cf4")},
        {"counterfactual index beyond dataset", "counterfactual --checkpoint " + ck + data + " --index 99999 --target 1 --out " +
         out("cf5"), 1, {"--index 99999 is outside"}, out("cf5")},
        {"counterfactual steps zero", "counterfactual --checkpoint " + ck + data + " --index 0 --target 1 --steps 0", 2, {"--steps"}},
        {"counterfactual confidence above 1", "counterfactual --checkpoint " + ck + data + " --index 0 --target 1 --confidence 2", 2,
         {"--confidence"}},
        {"counterfactual negative prototype weight", "counterfactual --checkpoint " + ck + data + " --index 0 --target 1 "
         "--prototype-weight -1", 2, {"--prototype-weight"}},
        {"intervene unknown layer", "intervene --checkpoint " + ck + data + " --limit 2 --layer features.99 --out " + out("iv1"), 1,
         {"no layer 'features.99' in the model (layers: "}, out("iv1")},
        {"intervene channel out of range", "intervene --checkpoint " + ck + data + " --limit 2 --layer features.0 --channels 999 --out " +
         out("iv2"), 1, {"channel 999 is outside the"}, out("iv2")},
        {"intervene bad value", "intervene --checkpoint " + ck + data + " --limit 2 --layer features.0 --value half --out " + out("iv3"), 1,
         {"intervention value 'half'", "zero, mean, constant:V or resample"}, out("iv3")},
        {"intervene constant not a number", "intervene --checkpoint " + ck + data + " --limit 2 --layer features.0 --value constant:nan "
         "--out " + out("iv4"), 1, {"constant:V needs a finite number"}, out("iv4")},
        {"intervene k beyond channels", "intervene --checkpoint " + ck + data + " --limit 2 --layer features.0 --channels 0 --k 2 --out " +
         out("iv5"), 1, {"top-k size 2 is outside [1, 1]"}, out("iv5")},
        {"intervene without layer", "intervene --checkpoint " + ck + data + " --limit 2", 2, {"--layer"}},
        {"counterfactual without target", "counterfactual --checkpoint " + ck + data + " --index 0", 2, {"--target"}},
        {"out is a file", explain + " --out " + dir.path("a_file"), 1, {"a_file", "not a folder"}},
        {"train out is a file", train + " --out " + dir.path("a_file"), 1, {"a_file", "not a folder"}},
        {"out empty", train + " --out ''", 1, {"--out is empty"}},
        {"out not creatable", explain + " --out /proc/glassbox-out", 1, {"/proc/glassbox-out", "cannot create"}},
        {"no such dataset folder", train_in + d + "/nothing --out " + out("nd"), 1, {"nothing"}, out("nd")},
        {"resume is a model file", resume_with + ck + " --out " + out("r1"), 1,
         {"not a glassbox resume file"}, out("r1")},
        {"resume without history", resume_with + dir.path("resume_no_history.safetensors") + " --out " + out("r2"), 1,
         {"train.history", "missing"}, out("r2")},
        {"resume epoch not a number", resume_with + dir.path("resume_epoch_text.safetensors") + " --out " + out("r3"),
         1, {"train.epoch", "'one'"}, out("r3")},
        {"resume without rng", resume_with + dir.path("resume_no_rng.safetensors") + " --out " + out("r4"), 1,
         {"rng.seed"}, out("r4")},
        {"resume history garbage", resume_with + dir.path("resume_history_garbage.safetensors") + " --out " + out("r5"),
         1, {"training history"}, out("r5")},
        {"metadata size garbage", "eval --checkpoint " + dir.path("size_garbage.safetensors") + data, 1, {"input_size", "28abc"}},
        {"metadata size huge", "eval --checkpoint " + dir.path("size_huge.safetensors") + data, 1, {"input_size", "2147483648"}},
        {"metadata batch norm yes", "eval --checkpoint " + dir.path("bn_yes.safetensors") + data, 1, {"vgg.batch_norm", "yes"}},
        {"normalisation mean nan", "eval --checkpoint " + dir.path("mean_nan.safetensors") + data, 1, {"normalize.mean", "nan"}},
        {"normalisation std inf", "eval --checkpoint " + dir.path("std_inf.safetensors") + data, 1, {"normalize.std", "inf"}},
        {"normalisation std zero", "eval --checkpoint " + dir.path("std_zero.safetensors") + data, 1, {"normalize.std"}},
        {"nan weights eval", "eval --checkpoint " + dir.path("nan.safetensors") + data, 1, {"features.0.weight", "NaN"}},
        {"nan weights explain", "explain --checkpoint " + dir.path("nan.safetensors") + data + " --index 0 --method saliency --out " +
         out("nan"), 1, {"features.0.weight", "NaN"}, out("nan")},
        {"nan pixel", "explain --checkpoint " + ck + " --array " + dir.path("nan_pixel.npy") + " --method saliency --out " + out("np"), 1,
         {"nan_pixel.npy", "1 of the array's pixels are NaN"}, out("np")},
        {"overflowing pixels", "explain --checkpoint " + ck + " --array " + dir.path("huge_pixels.npy") + " --method saliency --out " +
         out("hp"), 1, {"huge_pixels.npy", "output is NaN or infinite"}, out("hp")},
        {"dataset of 3 classes, eval", "eval --checkpoint " + ck + " --data " + d + "/three", 1, {"3 classes"}},
        {"dataset of 3 classes, evaluate", "evaluate --checkpoint " + ck + " --data " + d + "/three --limit 2 --method saliency "
         "--metric deletion --out " + out("three"), 1, {"3 classes"}, out("three")},
        {"truncated checkpoint", "eval --checkpoint " + dir.path("truncated.safetensors") + data, 1, {"truncated.safetensors"}},
        {"huge header", "eval --checkpoint " + dir.path("huge_header.safetensors") + data, 1, {"huge_header.safetensors"}},
        {"text as checkpoint", "eval --checkpoint " + dir.path("text.safetensors") + data, 1, {"text.safetensors"}},
        {"distill depth zero", "distill --checkpoint " + ck + data + " --depth 0 --out " + out("dz"), 2, {"--depth"}, out("dz")},
        {"distill depth 13", "distill --checkpoint " + ck + data + " --depth 13 --out " + out("d13"), 2, {"--depth", "[1, 12]"},
         out("d13")},
        {"distill targets", "distill --checkpoint " + ck + data + " --targets medium --out " + out("tm"), 2, {"--targets", "medium"},
         out("tm")},
        {"distill temperature zero", "distill --checkpoint " + ck + data + " --temperature 0 --out " + out("t0"), 2,
         {"--temperature"}, out("t0")},
        {"distill teacher of 3 classes", "distill --checkpoint " + ck + " --data " + d + "/three --out " + out("d3"), 1,
         {"3 classes"}, out("d3")},
        {"distill without --out", "distill --checkpoint " + ck + data, 2, {"--out"}},
    };
    Summary s;
    for (const auto& c : cases) check_case(c, s);
    std::cout << "bad-input suite: " << s.tried << " tried, " << s.clear << " clear errors, " << s.crashed << " crashed, "
              << s.silent << " passed silently, " << s.misleading << " misleading\n";
    CHECK(s.clear == s.tried);
}

TEST_CASE("cli: unusual but valid input works") {
    TempDir dir("odd-input");
    write_fake_mnist(dir.path(), 40, 20, 28, true);
    auto model = models::make_model("vgg-mini", {1, 28, 10});
    const std::string ck = dir.path("model.safetensors");
    models::save_checkpoint(ck, *model);
    // A jitter larger than the image wraps around (it wrote out of bounds once).
    const Run jitter = run("visualize --checkpoint " + ck + " --class 3 --steps 3 --jitter 100 --threads 1 --out " + dir.path("vis"));
    INFO(jitter.out);
    CHECK(jitter.code == 0);
    CHECK(fs::exists(dir.path("vis/activation_maximisation.png")));
    // An output folder that already exists (and holds other files) is used as it is.
    fs::create_directories(dir.path("existing"));
    write_bytes(dir.path("existing/keep.txt"), {'k'});
    const Run ex = run("explain --checkpoint " + ck + " --data-dir " + dir.path() + " --index 0 --method saliency --threads 1 --out " +
                       dir.path("existing"));
    INFO(ex.out);
    CHECK(ex.code == 0);
    CHECK(fs::exists(dir.path("existing/keep.txt")));
    CHECK(fs::exists(dir.path("existing/report.html")));
    // The largest seed trains and resumes (its resume file once could not be read back).
    const std::string train = "train --model vgg-mini --batch-size 20 --threads 1 --seed 18446744073709551615 --data-dir " +
                              dir.path() + " --out " + dir.path("seed");
    const Run first = run(train + " --epochs 1");
    INFO(first.out);
    REQUIRE(first.code == 0);
    const Run resumed = run(train + " --epochs 2 --resume " + dir.path("seed/resume.safetensors"));
    INFO(resumed.out);
    CHECK(resumed.code == 0);
    CHECK(resumed.out.find("epoch 2: train loss") != std::string::npos);
}
