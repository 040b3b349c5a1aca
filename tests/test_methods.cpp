// explain/methods and the method table: method specs by name (aliases, "did you
// mean" for near misses), every registered method runs on a trace and gives a map
// of the documented shape and sign, bad specs are clear errors, and docs/explain.md's
// method table is the one the table generates.
#include <algorithm>

#include "explain/gradient_methods.h"
#include "explain/lime.h"
#include "explain/methods.h"
#include "models/checkpoint.h"
#include "reference.h"
#include "temp_dir.h"

using namespace gb;
using namespace gb::testing;
using namespace gb::explain;

TEST_CASE("method specs parse name, argument and options") {
    const MethodSpec a = parse_method("ig:steps=32,rule=riemann_trapezoid");
    CHECK(a.name == "ig");
    CHECK(a.arg.empty());
    CHECK(a.params.at("steps") == "32");
    const MethodSpec b = parse_method("gradcam:features.7");
    CHECK(b.arg == "features.7");
    CHECK(parse_method("lrp:epsilon-plus-flat").arg == "epsilon-plus-flat");
    CHECK_THROWS_WITH_AS(parse_method(":x"), doctest::Contains("empty method name"), Error);
}

TEST_CASE("method specs are validated when parsed: names, composites, options and their ranges") {
    CHECK(parse_method("smoothgrad:seed=18446744073709551615,samples=3").params.size() == 2);
    auto fails = [](const std::string& spec, const std::string& message) {
        CHECK_THROWS_WITH_AS(parse_method(spec), doctest::Contains(message.c_str()), Error);
    };
    fails("ig:steps=4294967296", "method 'ig:steps=4294967296': steps: 4294967296 is out of range (expected an integer in [1, 100000])");
    fails("ig:steps=0", "steps: 0 is out of range");
    fails("ig:steps=12abc", "'12abc' is not an integer");
    fails("ig:rule=simpson", "simpson");
    fails("ig:steps=3,steps=4", "option 'steps' is given twice");
    fails("lime:samples=1e3", "'1e3' is not an integer");
    fails("smoothgrad:noise=nan", "noise: 'nan' is not a number");
    fails("smoothgrad:seed=-1", "seed: '-1' is not an integer in [0, 2^64)");
    fails("lrp:epsilon-plus,epsilon=-1", "epsilon: -1 is out of range");
    fails("lrp:no-such-composite", "unknown composite 'no-such-composite'");
    fails("occlusion:window=100000", "window: 100000 is out of range");
    fails("gradcam:features.7,alpha=2", "unknown option 'alpha' (it takes none)");
}

TEST_CASE("near misses of names, composites, options and values say what was meant; aliases name the method") {
    auto fails = [](const std::string& spec, const std::string& message) {
        CHECK_THROWS_WITH_AS(parse_method(spec), doctest::Contains(message.c_str()), Error);
    };
    fails("gradcm", "unknown method 'gradcm' (did you mean 'gradcam'?)");
    fails("guided-backprob", "did you mean 'guided-backprop'?");
    fails("ig:stepz=3", "unknown option 'stepz' (did you mean 'steps'?)");
    fails("lrp:epsilon-plus-flt", "unknown composite 'epsilon-plus-flt' (did you mean 'epsilon-plus-flat'?)");
    fails("ig:rule=riemann_lft", "did you mean 'riemann_left'?");
    CHECK_THROWS_WITH_AS(parse_method("occlude"), doctest::Contains("unknown method 'occlude'"), Error);
    try {
        parse_method("zzzzzz");
    } catch (const Error& e) {
        CHECK(std::string(e.what()).find("did you mean") == std::string::npos);  // nothing is close
    }
    CHECK(parse_method("gradcampp:features.7").name == "gradcam++");
    CHECK(parse_method("integrated-gradients:steps=4").name == "ig");
    CHECK(did_you_mean("samples", {"samples"}).empty());  // an exact match is not a near miss
}

TEST_CASE("the table's defaults are the options structs' and the function reads them") {
    const MethodInfo* sg = find_method("smoothgrad");
    REQUIRE(sg != nullptr);
    CHECK(sg->param("samples")->default_value == std::to_string(SmoothGradOptions{}.samples));
    CHECK(sg->param("noise")->default_value == "0.15");
    CHECK(find_method("ig")->param("rule")->default_value == integration_rule_name(IntegratedGradientsOptions{}.rule));
    CHECK(find_method("lime")->param("segments")->default_value == std::to_string(SurrogateOptions{}.slic.segments));
    CHECK(find_method("lrp")->param("epsilon")->default_value == "1e-06");
    CHECK(find_method("occlusion")->param("baseline")->default_value.empty());  // the input's lower bound
    CHECK(sg->usage() == "smoothgrad[:samples=25,noise=0.15,seed=0]");
    CHECK(find_method("gradcam")->usage() == "gradcam[:LAYER]");
    CHECK(method_caption(parse_method("lrp:epsilon-plus-flat")).find("(epsilon-plus-flat)") != std::string::npos);
    CHECK(method_caption(parse_method("gradcampp")) == find_method("gradcam++")->description);
}

TEST_CASE("every registered method computes a map on vgg-mini") {
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini.data.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini.model.safetensors"), "vgg-mini");
    Trace trace(*ck.model, data.at("input").narrow(0, 2));
    const std::vector<Target> t{Target::predicted()};
    for (const MethodInfo& m : list_methods()) {
        CAPTURE(m.name);
        std::vector<std::string> specs{m.name};
        if (m.arg.required) {  // every choice (the LRP composites)
            specs.clear();
            for (const auto& c : m.arg.choices) specs.push_back(m.name + ":" + c);
        }
        if (m.name == "smoothgrad") specs = {"smoothgrad:samples=2"};
        if (m.name == "ig") specs = {"ig:steps=4"};
        if (m.name == "lime" || m.name == "kernelshap") specs = {m.name + ":samples=8"};
        for (const auto& spec : specs) {
            CAPTURE(spec);
            const Attribution a = attribute(trace, parse_method(spec), t, PresetOptions::with_range(0.f, 1.f));
            CHECK(a.map.dim(0) == 2);
            CHECK(a.map.dim(2) == 28);
            CHECK(a.map.dim(3) == 28);
            CHECK(a.is_signed == m.is_signed);
            CHECK(a.is_signed == (m.kind != MethodKind::Cam && m.kind != MethodKind::Baseline && m.name != "saliency"));
            CHECK(max_abs(a.map.to_vector<float>()) > 0.f);
        }
    }
    CHECK_THROWS_WITH_AS(attribute(trace, parse_method("lrp"), t), doctest::Contains("name a composite"), Error);
    CHECK_THROWS_WITH_AS(attribute(trace, parse_method("ig:stepz=3"), t), doctest::Contains("unknown option 'stepz'"), Error);
    CHECK_THROWS_WITH_AS(attribute(trace, parse_method("saliency:features.7"), t), doctest::Contains("takes no"), Error);
    CHECK_THROWS_WITH_AS(attribute(trace, parse_method("occlude"), t), doctest::Contains("unknown method 'occlude'"), Error);
    CHECK_THROWS_WITH_AS(attribute(trace, parse_method("gradcam:classifier.9"), t), doctest::Contains("no layer"), Error);
    // A spec built by hand is validated too, alias included.
    MethodSpec by_hand;
    by_hand.name = by_hand.text = "gradcampp";
    CHECK(attribute(trace, by_hand, t).map.dim(1) == 1);
}

TEST_CASE("docs/explain.md's method table is the generated one (glassbox explain --list --format markdown)") {
    const std::string path = data_file("../../docs/explain.md");
    const std::string docs = read_text(path);
    const std::string begin = "<!-- methods:begin -->\n", end = "<!-- methods:end -->";
    const size_t b = docs.find(begin), e = docs.find(end);
    REQUIRE_MESSAGE(b != std::string::npos, path, " has no ", begin);
    REQUIRE_MESSAGE(e != std::string::npos, path, " has no ", end);
    const std::string table = docs.substr(b + begin.size(), e - b - begin.size());
    INFO("regenerate it: glassbox explain --list --format markdown, between the markers of ", path);
    CHECK(table == method_table_markdown());
}
