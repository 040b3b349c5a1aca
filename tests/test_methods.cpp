// explain/methods: method specs by name, every listed method runs on a trace
// and gives a map of the documented shape; bad specs are clear errors.
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

TEST_CASE("every listed method computes a map on vgg-mini") {
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini.data.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini.model.safetensors"), "vgg-mini");
    Trace trace(*ck.model, data.at("input").narrow(0, 2));
    const std::vector<Target> t{Target::predicted()};
    for (const MethodInfo& m : list_methods()) {
        CAPTURE(m.name);
        std::string spec = m.name;
        if (m.name == "smoothgrad") spec = "smoothgrad:samples=2";
        if (m.name == "ig") spec = "ig:steps=4";
        if (m.name == "lime" || m.name == "kernelshap") spec = m.name + ":samples=8";
        const Attribution a = attribute(trace, parse_method(spec), t, PresetOptions::with_range(0.f, 1.f));
        CHECK(a.map.dim(0) == 2);
        CHECK(a.map.dim(2) == 28);
        CHECK(a.map.dim(3) == 28);
        CHECK(a.is_signed == (m.kind != "cam" && m.kind != "baseline" && m.name != "saliency"));
        CHECK(max_abs(a.map.to_vector<float>()) > 0.f);
    }
    CHECK_THROWS_WITH_AS(attribute(trace, parse_method("lrp"), t), doctest::Contains("name a composite"), Error);
    CHECK_THROWS_WITH_AS(attribute(trace, parse_method("ig:stepz=3"), t), doctest::Contains("unknown option 'stepz'"), Error);
    CHECK_THROWS_WITH_AS(attribute(trace, parse_method("saliency:features.7"), t), doctest::Contains("takes no"), Error);
    CHECK_THROWS_WITH_AS(attribute(trace, parse_method("occlude"), t), doctest::Contains("unknown method 'occlude'"), Error);
    CHECK_THROWS_WITH_AS(attribute(trace, parse_method("gradcam:classifier.9"), t), doctest::Contains("no layer"), Error);
}
