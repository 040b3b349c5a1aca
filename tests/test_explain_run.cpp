// explain/explain_run and explain/model_pictures: the bodies of `glassbox explain` and `visualize` as library
// calls. The maps are attribute()'s on a trace of the same batch (bit for bit), the files are the ones the header
// promises, and the pictures and tables have the stated layout. References: attribute() itself, and the layout
// arithmetic of picture_grid written out.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <sstream>

#include "core/factory.h"
#include "explain/explain_run.h"
#include "explain/model_pictures.h"
#include "explain/plot.h"
#include "io/npy.h"
#include "models/registry.h"
#include "temp_dir.h"
#include "train/metrics.h"
#include "testing.h"

using namespace gb;
using namespace gb::testing;

namespace {

// Two 8x8 grey inputs of a 4-class model, normalised with mean 0.5 and std 0.25.
explain::ExplainInputs two_inputs() {
    Generator g(11);
    explain::ExplainInputs in;
    in.raw = uniform(Shape{2, 1, 8, 8}, 0.f, 1.f, g);
    in.names = {"first", "second"};
    in.labels = {1, -1};
    in.notes = {{"a note"}, {}};
    in.class_names = {"w", "x", "y", "z"};
    in.class_names_source = "the test";
    in.mean = {0.5f};
    in.stddev = {0.25f};
    in.normalization_source = "the test";
    explain::normalize_inputs(in);
    return in;
}

std::shared_ptr<models::Vgg> tiny_model() {
    Generator g(5);
    return models::make_model("vgg-mini", {1, 8, 4}, g);
}

}  // namespace

TEST_CASE("explain_batch: one trace, each method's map as attribute() gives it; write_explanations' files") {
    auto model = tiny_model();
    const explain::ExplainInputs in = two_inputs();
    const explain::Target target = explain::Target::parse("pred", in.class_names);
    const std::vector<explain::MethodSpec> specs = {explain::parse_method("saliency"),
                                                    explain::parse_method("lrp:epsilon-plus-flat")};
    const explain::PresetOptions preset = explain::preset_options(in);
    std::ostringstream log;
    const explain::BatchExplanation result =
        explain::explain_batch(*model, in, target, specs, preset, Device::cpu(), log);
    CHECK(log.str() == "explain: saliency\nexplain: lrp:epsilon-plus-flat\n");
    REQUIRE(result.maps.size() == 2);
    CHECK(result.logits.shape() == Shape{2, 4});
    CHECK(result.classes == train::predictions(result.logits));
    CHECK_FALSE(result.canonizer_note.empty());  // an lrp method was asked for
    explain::Trace trace(*model, in.normalized);
    for (size_t k = 0; k < specs.size(); ++k) {
        CAPTURE(specs[k].text);
        const explain::Attribution direct = explain::attribute(trace, specs[k], {target}, preset);
        CHECK(direct.map.to_vector<float>() == result.maps[k].second.map.to_vector<float>());
        CHECK(direct.is_signed == result.maps[k].second.is_signed);
    }

    TempDir dir("explain_run");
    explain::ExplanationFiles files;
    files.out_dir = dir.path();
    files.checkpoint = "in memory";
    files.upscale = 2;
    const std::string html = explain::write_explanations(files, *model, in, target, result, log);
    CHECK(html == dir.path("report.html"));
    for (const char* f : {"input_0.png", "input_1.png", "saliency.npy", "lrp_epsilon-plus-flat.npy", "0_saliency.png",
                          "1_saliency_overlay.png", "1_lrp_epsilon-plus-flat.png", "report.html", "run.json"})
        CHECK_MESSAGE(std::filesystem::exists(dir.path(f)), f);
    CHECK(io::load_npy(dir.path("saliency.npy")).to_vector<float>() == result.maps[0].second.map.to_vector<float>());
    const auto run = nlohmann::json::parse(read_text(dir.path("run.json")));
    CHECK(run.at("methods") == nlohmann::json({"saliency", "lrp:epsilon-plus-flat"}));
    CHECK(run.at("inputs").at(0).at("notes").at(0) == "a note");
    CHECK(run.at("checkpoint") == "in memory");
    const std::string page = read_text(html);
    CHECK(page.find("first (explained: ") != std::string::npos);
    // Per input and method one row holding the map and the overlay (alt "<spec> map" / "<spec> overlay").
    for (const char* alt : {"alt=\"saliency map\"", "alt=\"saliency overlay\"", "alt=\"lrp:epsilon-plus-flat map\"",
                            "alt=\"lrp:epsilon-plus-flat overlay\""}) {
        size_t hits = 0;
        for (size_t p = page.find(alt); p != std::string::npos; p = page.find(alt, p + 1)) ++hits;
        CHECK_MESSAGE(hits == 2, alt);
    }
    CHECK(page.find("target: " + in.class_names[static_cast<size_t>(result.classes[0])] + " (" +
                    std::to_string(result.classes[0]) + "), the predicted class") != std::string::npos);
    CHECK(page.find("input as the model saw it: 8x8 grey") != std::string::npos);
    CHECK(explain::file_stem("lrp:epsilon-plus-flat,epsilon=0.1") == "lrp_epsilon-plus-flat_epsilon_0.1");
}

TEST_CASE("report captions name method, layer or composite, target and parameters; flags come from the values") {
    const std::vector<std::string> names = {"w", "x", "y", "z"};
    CHECK(explain::target_caption(explain::Target::predicted(), 1, names) == "x (1), the predicted class");
    CHECK(explain::target_caption(explain::Target::of(2), 2, names) == "y (2)");
    CHECK(explain::target_caption(explain::Target::contrast(0, 3), 0, names) == "w (0) versus z (3)");

    const Tensor map = zeros(Shape{1, 2, 2});
    const explain::MethodSpec gradcam = explain::parse_method("gradcam");
    const explain::Attribution cam{map, false, "", "features.5"};
    CHECK(explain::map_caption(gradcam, cam, "y (2)") ==
          std::vector<std::string>{explain::find_method("gradcam")->description,
                                   "at layer features.5 (the default: the last convolution's rectified output)",
                                   "target: y (2)", "parameters: none"});
    const explain::MethodSpec at = explain::parse_method("gradcam:features.3");
    CHECK(explain::map_caption(at, {map, false, "", "features.3"}, "y (2)")[1] == "at layer features.3");
    const explain::MethodInfo* ig = explain::find_method("ig");
    CHECK(explain::map_caption(explain::parse_method("ig:steps=7"), {map, true}, "w (0)") ==
          std::vector<std::string>{ig->description, "target: w (0)",
                                   "parameters: steps=7, rule=" + ig->param("rule")->default_value + " (default)"});
    const explain::MethodInfo* lrp = explain::find_method("lrp");
    CHECK(explain::map_caption(explain::parse_method("lrp:epsilon-plus-flat,gamma=0.5"), {map, true, "canonizer none"}, "z (3)") ==
          std::vector<std::string>{lrp->description, "composite epsilon-plus-flat", "canonizer none", "target: z (3)",
                                   "parameters: epsilon=" + lrp->param("epsilon")->default_value + " (default), gamma=0.5"});

    // Flags: decided from the values (NaN/Inf first, then all zero, then constant); a map with structure has none.
    CHECK(explain::map_flag(map, gradcam, cam).rfind("all zero: the ReLU of gradcam removed every value at features.5", 0) == 0);
    CHECK(explain::map_flag(map, explain::parse_method("saliency"), {map, false}).rfind("all zero: every value of the map is 0", 0) == 0);
    const Tensor nan = from_vector(std::vector<float>{0.f, NAN, 1.f, INFINITY}, Shape{1, 2, 2});
    CHECK(explain::map_flag(nan, explain::parse_method("ig"), {nan, true}) ==
          "contains NaN/Inf: 2 of 4 values; not drawn (the raw values are in ig.npy)");
    const Tensor half = full(Shape{1, 2, 2}, 0.5f);
    CHECK(explain::map_flag(half, explain::parse_method("saliency"), {half, false}) ==
          "constant: every value is 0.5; the picture has no structure");
    const Tensor some = from_vector(std::vector<float>{0.f, 0.f, 0.f, -1e-30f}, Shape{1, 2, 2});
    CHECK(explain::map_flag(some, gradcam, cam).empty());
}

TEST_CASE("model pictures: objectives with captions, pixels in [0, 1], the grid's layout, the importance CSV") {
    auto model = tiny_model();
    const explain::ExplainInputs in = two_inputs();
    std::vector<explain::Objective> objectives;
    std::vector<std::string> captions;
    explain::visualization_objectives({}, "", {}, false, model->config(), in.class_names, objectives, captions);
    CHECK(captions == in.class_names);  // no --class: every class
    std::vector<explain::Objective> o2;
    std::vector<std::string> c2;
    CHECK_THROWS_WITH_AS(explain::visualization_objectives({7}, "", {}, false, model->config(), in.class_names, o2, c2),
                         doctest::Contains("--class 7 is outside the model's 4 classes"), Error);
    explain::visualization_objectives({}, "features.0", {1, 2}, true, model->config(), in.class_names, o2, c2);
    CHECK(c2 == std::vector<std::string>{"features.0 #1", "features.0 #2"});
    CHECK((o2[0].centre && o2[1].index == 2));

    explain::ActivationMaxOptions ao;
    ao.steps = 3;
    const explain::ActivationPictures p = explain::maximise_activations(*model, in, objectives, ao);
    REQUIRE(p.images.shape() == Shape{4, 1, 8, 8});
    CHECK(p.start.size() == 4);
    // Bounded by the pixel range after normalisation, so back in pixels within [0, 1] (float rounding: 1e-5).
    for (float v : p.images.to_vector<float>()) CHECK((v >= -1e-5f && v <= 1.f + 1e-5f));
    // They are the optimiser's images in the normalised space [(0 - 0.5) / 0.25, (1 - 0.5) / 0.25], times the
    // standard deviation plus the mean (float arithmetic, the same operations: exact).
    ao.low = -2.f;
    ao.high = 2.f;
    const auto normalised = explain::activation_maximisation(*model, Shape{1, 8, 8}, objectives, ao).images.to_vector<float>();
    const auto pixels = p.images.to_vector<float>();
    for (size_t k = 0; k < pixels.size(); ++k) REQUIRE(pixels[k] == normalised[k] * 0.25f + 0.5f);
    // 4 tiles of 8x8 enlarged twice, 3 per row: 3 * (16 + 8) + 8 wide, 2 * (16 + 22 + 8) + 8 high (pad 8, caption 22).
    const explain::Image grid = explain::picture_grid(p.images, captions, 2, 3);
    CHECK(grid.width == 80);
    CHECK(grid.height == 100);
    // A caption wider than its tile is cut with ".." to the tile's width plus the padding (so neighbours never meet).
    const std::string cut = explain::fit_caption("a very long class name indeed", 24, 1.0);
    CHECK(cut.size() < 29);
    CHECK(cut.substr(cut.size() - 2) == "..");
    CHECK(explain::text_width(cut, 1.0) <= 24);
    CHECK(explain::fit_caption("short", 200, 1.5) == "short");

    CHECK(explain::channel_importance_csv({{"features.0", {{3, 0.5}, {1, 0.25}}}}) ==
          "layer,rank,channel,mean_abs_activation\nfeatures.0,0,3,0.5\nfeatures.0,1,1,0.25\n");
}
