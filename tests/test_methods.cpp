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
