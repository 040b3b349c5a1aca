// `glassbox distill` end to end on a small IDX dataset with a vgg-mini teacher: the files it writes, the saved
// tree reproducing the run's scores exactly (reloaded here and through `glassbox eval`), CART's scores through
// eval, the report's parts, and a tree refused by the commands that take networks.
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "cli_run.h"
#include "idx_writer.h"
#include "io/dataset.h"
#include "models/cart.h"
#include "models/checkpoint.h"
#include "models/registry.h"
#include "models/soft_tree.h"
#include "train/distill.h"

using namespace gb;
using namespace gb::testing;

namespace {

std::string percent(double v) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(2) << 100 * v << "%";
    return s.str();
}

}  // namespace

TEST_CASE("cli: distill writes a reloadable tree, CART, results and a report; eval scores both trees") {
    TempDir dir("cli-distill");
    write_fake_mnist(dir.path(), 64, 40, 28, true);
    Generator gen(5);
    auto teacher = models::make_model("vgg-mini", {1, 28, 10}, gen);
    const std::string ck = dir.path("teacher.safetensors");
    models::save_checkpoint(ck, *teacher, models::normalization_metadata({0.5f}, {0.25f}));
    const std::string out = dir.path("tree");
    const Run r = run("distill --checkpoint " + ck + " --data-dir " + dir.path() +
                      " --depth 3 --epochs 2 --batch-size 16 --temperature 2 --report-images 3 --threads 1 --out " + out);
    INFO(r.out);
    REQUIRE(r.code == 0);
    CHECK(r.out.find("epoch 2/2: loss") != std::string::npos);
    CHECK(r.out.find("CART (depth 3, Gini") != std::string::npos);
    for (const char* f : {"tree.safetensors", "cart.safetensors", "results.json", "history.svg", "report.html"})
        CHECK(std::filesystem::exists(out + "/" + f));

    const auto results = nlohmann::json::parse(read_text(out + "/results.json"));
    CHECK(results["config"]["depth"] == 3);
    CHECK(results["config"]["targets"] == "soft");
    CHECK(results["history"].size() == 2);
    const double accuracy = results["tree"]["accuracy"].get<double>();
    const double fidelity = results["tree"]["fidelity"].get<double>();
    const double cart_accuracy = results["cart"]["accuracy"].get<double>();

    // The saved tree reproduces the run's test accuracy: its inputs normalised as its metadata says.
    const io::SafeTensors file = io::load_safetensors(out + "/tree.safetensors");
    auto tree = models::load_soft_tree(file);
    CHECK(tree->config().depth == 3);
    CHECK(file.metadata.at("distill.targets") == "soft");
    std::vector<float> mean, stddev;
    REQUIRE(models::read_normalization(file.metadata, "tree", mean, stddev));
    CHECK(mean == std::vector<float>{0.5f});
    const io::Dataset test = io::load_dataset("fashion-mnist", io::Split::Test, dir.path());
    const Tensor rows = train::normalized_rows(test.images, mean, stddev);
    const auto labels = test.labels.to_vector<int32_t>();
    const auto pred = tree->predict(rows).label;
    int64_t right = 0;
    for (size_t i = 0; i < labels.size(); ++i) right += pred[i] == labels[i];
    CHECK(static_cast<double>(right) / static_cast<double>(labels.size()) == doctest::Approx(accuracy).epsilon(1e-12));

    // eval dispatches on the file's format: the same numbers.
    const Run ev = run("eval --checkpoint " + out + "/tree.safetensors --data-dir " + dir.path() + " --threads 1");
    INFO(ev.out);
    REQUIRE(ev.code == 0);
    CHECK(ev.out.find("SoftTree(depth=3") != std::string::npos);
    CHECK(ev.out.find("accuracy: " + percent(accuracy)) != std::string::npos);
    const Run evc = run("eval --checkpoint " + out + "/cart.safetensors --data-dir " + dir.path() + " --threads 1");
    INFO(evc.out);
    REQUIRE(evc.code == 0);
    CHECK(evc.out.find("CART tree") != std::string::npos);
    CHECK(evc.out.find("accuracy: " + percent(cart_accuracy)) != std::string::npos);

    // The report: the scores, the drawn tree with its filters, the paths of three test images.
    const std::string html = read_text(out + "/report.html");
    CHECK(html.find(percent(fidelity)) != std::string::npos);
    CHECK(html.find("<svg") != std::string::npos);
    CHECK(html.find("node 6") != std::string::npos);
    CHECK(html.find("test image 2") != std::string::npos);
    CHECK(html.find("test image 3") == std::string::npos);
    CHECK(html.find("most probable leaf") != std::string::npos);

    // Hard labels: no pass of the teacher over the training split, a different tree.
    const Run hard = run("distill --checkpoint " + ck + " --data-dir " + dir.path() +
                         " --depth 2 --epochs 1 --targets hard --no-cart --threads 1 --out " + dir.path("hard"));
    INFO(hard.out);
    REQUIRE(hard.code == 0);
    CHECK(hard.out.find("teacher (train)") == std::string::npos);
    CHECK(hard.out.find("targets: labels") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir.path("hard/cart.safetensors")));

    // A tree is not a network: the commands that take one say so.
    const Run ex = run("explain --checkpoint " + out + "/tree.safetensors --data-dir " + dir.path() +
                       " --index 0 --method saliency --out " + dir.path("ex"));
    CHECK(ex.code == 1);
    CHECK(ex.out.find("decision tree written by glassbox distill") != std::string::npos);
}
