// models/ + explain/ against PyTorch itself: tests/python/torchvision_vgg.py
// (run here through the configured Python, GB_PYTHON) builds torchvision-layout
// VGGs with seeded random weights and randomly perturbed BatchNorm statistics,
// saves their plain state dicts (no glassbox metadata; int64 num_batches_tracked
// included) and the logits and Zennit 0.5.1 LRP maps. Each state dict is loaded
// with load_checkpoint(path) alone (configuration inferred), and must give
// PyTorch's logits and Zennit's EpsilonPlusFlat / EpsilonGammaBox maps
// (with the BatchNorm canonizer), also through `glassbox explain` with no --model.
// A missing Python, torch, torchvision or zennit
// fails the test with the reason (it is never skipped).
#include <cstdlib>
#include <iomanip>
#include <sstream>

#include "autograd/grad_mode.h"
#include "cli_run.h"
#include "explain/trace.h"
#include "io/npy.h"
#include "models/checkpoint.h"
#include "python_run.h"
#include "reference.h"
#include "temp_dir.h"

using namespace gb;
using namespace gb::testing;
using explain::Composite;

namespace {

// Logits: float32 PyTorch (oneDNN) vs glassbox through up to 13 convolutions with
// perturbed BatchNorm; the bound.
constexpr double kLogitTol = 1e-4;
// LRP maps, per sample relative to the map's max |value| (the reference README's rule).
// Zennit's SequentialMergeBatchNorm leaves every merged BN multiplying by
// 1/sqrt(1 + 1e-5) = 1 - 5e-6 where glassbox folds exactly; that drifts by up to
// about n_BN x 5e-6 = 6.5e-5 with vgg16's 13 BNs. Measured (2026-12, x86-64 AVX-512):
// 1.0e-5 (vgg11_bn pattern), 1.3e-5 (vgg16_bn pattern), 9e-7 without BN, where
// Zennit's own float32-vs-float64 difference is 1e-6 (logged below).
constexpr double kLrpTol = 1e-4;

// Runs the reference script into `dir`; the test fails with the script's output otherwise.
void run_script(const std::string& dir, bool full) {
    run_python("torchvision_vgg.py", full ? std::vector<std::string>{dir, "--full"} : std::vector<std::string>{dir});
}

// The narrow cases, written once per test run (removed at exit).
const TempDir& narrow_references() {
    static const TempDir dir("torchvision");
    static const bool written = (run_script(dir.path(), false), true);  // retried if it failed
    (void)written;
    return dir;
}

std::string sci(double v) {
    std::ostringstream s;
    s << std::scientific << std::setprecision(2) << v;
    return s.str();
}

struct Case {
    const char* name;
    std::vector<int64_t> features;  // 0 = max-pool
    bool batch_norm;
    std::vector<int64_t> hidden;
    int64_t classes;
};

}  // namespace

TEST_CASE("torchvision VGG state dicts load without a name and match PyTorch's logits and Zennit's LRP") {
    const TempDir& dir = narrow_references();
    const std::vector<Case> cases = {
        {"vgg11_bn_narrow", {8, 0, 16, 0, 24, 24, 0, 32, 32, 0, 32, 32, 0}, true, {40, 24}, 10},
        {"vgg13_narrow", {8, 8, 0, 16, 16, 0, 16, 16, 0, 24, 24, 0, 24, 24, 0}, false, {32, 32}, 7},
        {"vgg16_bn_narrow_224", {4, 4, 0, 8, 8, 0, 8, 8, 8, 0, 16, 16, 16, 0, 16, 16, 16, 0}, true, {24, 16}, 5},
    };
    for (const Case& c : cases) {
        const std::string name = c.name;
        CAPTURE(name);
        models::Checkpoint ck = models::load_checkpoint(dir.path(std::string(c.name) + ".model.safetensors"));
        const models::VggConfig& cfg = ck.model->config();
        CHECK(cfg.name == "vgg-custom");
        CHECK(cfg.features == c.features);
        CHECK(cfg.batch_norm == c.batch_norm);
        CHECK(cfg.hidden == c.hidden);
        CHECK(cfg.num_classes == c.classes);
        CHECK(cfg.in_channels == 3);
        CHECK(cfg.avgpool == 7);
        CHECK(cfg.input_size == 224);
        const io::SafeTensors ref = io::load_safetensors(dir.path(std::string(c.name) + ".ref.safetensors"));
        const Tensor x = ref.at("input");
        {
            autograd::NoGradGuard ng;
            const Tensor logits = (*ck.model)(x);
            MESSAGE(name << " logits: glassbox vs PyTorch " << max_relative_error(logits, ref.at("logits"))
                         << (ref.contains("logits.f64") ? ", PyTorch f32 vs f64 " + sci(max_relative_error(ref.at("logits"), ref.at("logits.f64"))) : ""));
            check_reference(logits, ref.at("logits"), kLogitTol, name + " logits");
        }
        const float low = std::stof(ref.metadata.at("low")), high = std::stof(ref.metadata.at("high"));
        explain::Trace trace(*ck.model, x);  // the composites merge BatchNorm (default canonizer)
        const Tensor seed = trace.seed(targets_of(ref.at("target")));
        for (const char* preset : {"epsilon-plus-flat", "epsilon-gamma-box"}) {
            const std::string key = std::string("lrp.") + (preset[8] == 'p' ? "epsilon_plus_flat" : "epsilon_gamma_box");
            const explain::PresetOptions opts = explain::PresetOptions::with_range(low, high);
            const Tensor r = trace.relevance(Composite::preset(preset, opts), seed)[0];
            MESSAGE(name << " " << key << ": glassbox vs Zennit " << max_relative_error(r, ref.at(key))
                         << (ref.contains(key + ".f64") ? ", Zennit f32 vs f64 " + sci(max_relative_error(ref.at(key), ref.at(key + ".f64"))) : ""));
            check_reference(r, ref.at(key), kLrpTol, name + " " + key);
            if (c.batch_norm) {
                // The perturbed statistics make the merge matter: without the canonizer
                // the map is far from Zennit's (the check above is not vacuous).
                explain::PresetOptions none = opts;
                none.canonizer = explain::Canonizer::None;
                const double off = max_relative_error(trace.relevance(Composite::preset(preset, none), seed)[0], ref.at(key));
                MESSAGE(name << " " << key << " without the canonizer: " << off);
                CHECK(off > 20 * kLrpTol);
            }
        }
    }
}

TEST_CASE("glassbox explain: a torchvision state dict without --model gives Zennit's map") {
    const TempDir& dir = narrow_references();
    const std::string name = "vgg16_bn_narrow_224";  // input 1x3x224x224, the inferred model's own size
    const io::SafeTensors ref = io::load_safetensors(dir.path(name + ".ref.safetensors"));
    io::save_npy(dir.path("cli-input.npy"), ref.at("input"));
    const Run r = run("explain --checkpoint " + dir.path(name + ".model.safetensors") + " --array " +
                      dir.path("cli-input.npy") + " --normalize none --method lrp:epsilon-plus-flat --threads 2 --out " +
                      dir.path("cli-out"));
    INFO(r.out);
    REQUIRE(r.code == 0);
    check_reference(io::load_npy(dir.path("cli-out/lrp_epsilon-plus-flat.npy")), ref.at("lrp.epsilon_plus_flat"), kLrpTol,
                    "glassbox explain " + name);
}

TEST_CASE("torchvision's own vgg11_bn (4096-wide classifier, 1000 classes, 224x224) loads and matches PyTorch") {
    TempDir dir("torchvision-full");
    run_script(dir.path(), true);
    const std::string path = dir.path("vgg11_bn_full.model.safetensors");
    const io::SafeTensors ref = io::load_safetensors(dir.path("vgg11_bn_full.ref.safetensors"));
    for (const std::string name : {"", "vgg11_bn"}) {
        CAPTURE(name);
        models::Checkpoint ck = models::load_checkpoint(path, name);
        CHECK(ck.model->config().name == "vgg11-bn");
        CHECK(ck.model->config().hidden == std::vector<int64_t>{4096, 4096});
        CHECK(ck.model->config().num_classes == 1000);
        autograd::NoGradGuard ng;
        const Tensor logits = (*ck.model)(ref.at("input"));
        MESSAGE("vgg11_bn logits: glassbox vs PyTorch " << max_relative_error(logits, ref.at("logits")));
        check_reference(logits, ref.at("logits"), kLogitTol, "vgg11_bn logits");
    }
}
