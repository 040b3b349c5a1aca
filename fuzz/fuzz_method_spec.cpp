// libFuzzer harness: the explanation method spec parser ("lrp:epsilon-plus-flat",
// "ig:steps=32,rule=riemann_left", "gradcam:features.7" ...) and the parsers a spec's parts go
// through without a model: LRP composite presets, CAM method names, integration rules, canonizers
// and targets.
#include <string>

#include "core/error.h"
#include "explain/cam.h"
#include "explain/canonizer.h"
#include "explain/composite.h"
#include "explain/gradient_methods.h"
#include "explain/methods.h"
#include "explain/target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    using namespace gb::explain;
    try {
        const MethodSpec s = parse_method(text);
        if (s.name.empty()) __builtin_trap();  // parse_method refuses an empty name
        try {
            if (s.name == "lrp") (void)Composite::preset(s.arg);
        } catch (const gb::Error&) {
        }
        try {
            (void)parse_cam_method(s.name);
        } catch (const gb::Error&) {
        }
        try {
            if (auto it = s.params.find("rule"); it != s.params.end()) (void)parse_integration_rule(it->second);
        } catch (const gb::Error&) {
        }
        try {
            (void)parse_canonizer(s.arg);
        } catch (const gb::Error&) {
        }
    } catch (const gb::Error&) {
    }
    // The same text as a target, with and without class names.
    try {
        (void)Target::parse(text);
    } catch (const gb::Error&) {
    }
    try {
        (void)Target::parse(text, {"cat", "dog", "cat-dog", "0"});
    } catch (const gb::Error&) {
    }
    return 0;
}
