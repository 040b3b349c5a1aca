// cli/: `glassbox explain` and `glassbox evaluate` on a BatchNorm model give
// the library's verified numbers: the written .npy maps against Zennit 0.5.1's
// SequentialMergeBatchNorm composites (tests/data/vgg_mini_bn.lrp.safetensors,
// per-sample tolerances from the file), the canonizer on by default and named
// in report.html, results.md and run.json, and --canonizer none.
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cli_run.h"
#include "idx_writer.h"
#include "io/npy.h"
#include "reference.h"
#include "temp_dir.h"

using namespace gb;
using namespace gb::testing;

TEST_CASE("cli explain on vgg-mini-bn: LRP maps match Zennit with the BatchNorm canonizer by default") {
    TempDir dir("cli-bn");
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini_bn.data.safetensors"));
    const io::SafeTensors ref = io::load_safetensors(data_file("vgg_mini_bn.lrp.safetensors"));
    // Samples 0 and 1 are explained for their predicted class, the reference's targets there.
    io::save_npy(dir.path("input.npy"), data.at("input").narrow(0, 2));
    const std::string common = "explain --checkpoint " + data_file("vgg_mini_bn.model.safetensors") +
                               " --model vgg-mini-bn --array " + dir.path("input.npy") +
                               " --method lrp:epsilon-plus-flat --method lrp:epsilon-gamma-box --method saliency --threads 1";
    const Run on = run(common + " --out " + dir.path("on"));
    INFO(on.out);
    REQUIRE(on.code == 0);
    for (const char* k : {"epsilon_plus_flat", "epsilon_gamma_box"}) {
        const std::string key = k;
        std::string file = key;
        std::replace(file.begin(), file.end(), '_', '-');
        const Tensor got = io::load_npy(dir.path("on/lrp_" + file + ".npy"));
        check_reference(got, ref.at("lrp." + key).narrow(0, 2), reference_tol(ref, "lrp." + key), key);
    }
    const std::string note = "canonizer batchnorm: 4 BatchNorm2d merged into the Conv2d/Linear before them";
    CHECK(read_text(dir.path("on/report.html")).find(note) != std::string::npos);
    const auto meta = nlohmann::json::parse(read_text(dir.path("on/run.json")));
    CHECK(meta.at("canonizer") == "batchnorm");
    CHECK(meta.at("canonizer_note") == note);

    const Run off = run(common + " --canonizer none --out " + dir.path("off"));
    INFO(off.out);
    REQUIRE(off.code == 0);
    const Tensor plain = io::load_npy(dir.path("off/lrp_epsilon-plus-flat.npy"));
    CHECK(max_relative_error(plain, ref.at("lrp.epsilon_plus_flat").narrow(0, 2)) > 0.05);
    CHECK(read_text(dir.path("off/report.html")).find("canonizer none: 4 BatchNorm2d layers not merged") != std::string::npos);
    // Gradients are the model's own either way.
    CHECK(io::load_npy(dir.path("off/saliency.npy")).to_vector<float>() ==
          io::load_npy(dir.path("on/saliency.npy")).to_vector<float>());

    const Run bad = run(common + " --canonizer zennit --out " + dir.path("bad"));
    CHECK(bad.code != 0);
    CHECK(bad.out.find("zennit") != std::string::npos);
    io::save_npy(dir.path("wrong.npy"), data.at("input").view(Shape{4, 28, 28}));
    const Run shape = run("explain --checkpoint " + data_file("vgg_mini_bn.model.safetensors") +
                          " --model vgg-mini-bn --array " + dir.path("wrong.npy") + " --method saliency --out " + dir.path("w"));
    CHECK(shape.code != 0);
    CHECK(shape.out.find("the model takes [N, 1, 28, 28] arrays, got [1, 4, 28, 28]") != std::string::npos);
}

TEST_CASE("cli evaluate on vgg-mini-bn canonizes LRP by default and says so") {
    TempDir dir("cli-bn-eval");
    write_fake_mnist(dir.path(), 10, 6, 28, true);
    const std::string common = "evaluate --checkpoint " + data_file("vgg_mini_bn.model.safetensors") +
                               " --model vgg-mini-bn --data-dir " + dir.path() +
                               " --limit 4 --method lrp:epsilon-plus-flat --metric conservation --threads 1";
    const Run on = run(common + " --out " + dir.path("on"));
    INFO(on.out);
    REQUIRE(on.code == 0);
    const std::string note = "canonizer batchnorm: 4 BatchNorm2d merged into the Conv2d/Linear before them";
    CHECK(read_text(dir.path("on/results.md")).find(note) != std::string::npos);
    CHECK(read_text(dir.path("on/report.html")).find(note) != std::string::npos);
    CHECK(nlohmann::json::parse(read_text(dir.path("on/run.json"))).at("canonizer_note") == note);
    const Run off = run(common + " --canonizer none --out " + dir.path("off"));
    INFO(off.out);
    REQUIRE(off.code == 0);
    CHECK(read_text(dir.path("off/results.md")).find("canonizer none") != std::string::npos);
    CHECK(read_text(dir.path("off/results.csv")) != read_text(dir.path("on/results.csv")));
}
