#include "explain/methods.h"

#include <algorithm>
#include <sstream>

#include "core/parse.h"

#include "explain/cam.h"
#include "explain/gradient_methods.h"
#include "explain/lime.h"
#include "explain/perturbation.h"

namespace gb::explain {

namespace {

const std::vector<std::string> kCams = {"gradcam", "gradcam++", "xgradcam", "layercam", "scorecam"};

// The key=value options each method takes, with the accepted ranges: checked
// when a spec is parsed (before any model is loaded or image read), and read
// with the same bounds when the method runs.
struct ParamSpec {
    const char* key;
    enum Kind { Int, Seed, Number, Rule } kind;
    double lo = 0, hi = 0;
};

const std::vector<ParamSpec>& params_of(const std::string& method) {
    static const std::vector<ParamSpec> none;
    static const std::vector<ParamSpec> surrogate = {{"samples", ParamSpec::Int, 1, 1e6},
                                                     {"segments", ParamSpec::Int, 1, 1 << 20},
                                                     {"compactness", ParamSpec::Number, 0, 1e6},
                                                     {"seed", ParamSpec::Seed},
                                                     {"baseline", ParamSpec::Number, -1e6, 1e6}};
    static const std::map<std::string, std::vector<ParamSpec>> table = {
        {"lrp", {{"epsilon", ParamSpec::Number, 0, 1e6}, {"gamma", ParamSpec::Number, 0, 1e6}}},
        {"smoothgrad", {{"samples", ParamSpec::Int, 1, 1e5}, {"noise", ParamSpec::Number, 0, 1e6}, {"seed", ParamSpec::Seed}}},
        {"ig", {{"steps", ParamSpec::Int, 1, 1e5}, {"rule", ParamSpec::Rule}}},
        {"occlusion", {{"window", ParamSpec::Int, 1, 4096}, {"stride", ParamSpec::Int, 1, 4096},
                       {"baseline", ParamSpec::Number, -1e6, 1e6}}},
        {"lime", surrogate},
        {"kernelshap", surrogate},
        {"random", {{"seed", ParamSpec::Seed}}}};
    auto it = table.find(method);
    return it == table.end() ? none : it->second;
}

const ParamSpec& param_spec(const MethodSpec& s, const std::string& key) {
    for (const auto& p : params_of(s.name))
        if (key == p.key) return p;
    std::string known;
    for (const auto& p : params_of(s.name)) known += (known.empty() ? "" : ", ") + std::string(p.key);
    GB_FAIL("method '", s.text, "': unknown option '", key, "'", known.empty() ? " (it takes none)" : " (options: " + known + ")");
}

std::string what(const MethodSpec& s, const std::string& key) { return "method '" + s.text + "': " + key; }

int64_t int_param(const MethodSpec& s, const std::string& key, int64_t fallback) {
    auto it = s.params.find(key);
    if (it == s.params.end()) return fallback;
    const ParamSpec& p = param_spec(s, key);
    return parse_int(it->second, static_cast<int64_t>(p.lo), static_cast<int64_t>(p.hi), what(s, key));
}

uint64_t seed_param(const MethodSpec& s) {
    auto it = s.params.find("seed");
    return it == s.params.end() ? 0 : parse_uint(it->second, what(s, "seed"));
}

float float_param(const MethodSpec& s, const std::string& key, float fallback) {
    auto it = s.params.find(key);
    if (it == s.params.end()) return fallback;
    const ParamSpec& p = param_spec(s, key);
    return static_cast<float>(parse_number(it->second, p.lo, p.hi, what(s, key)));
}

bool is_cam(const std::string& name) { return std::find(kCams.begin(), kCams.end(), name) != kCams.end(); }

// Everything about a spec that can be checked without a model: the method, its
// argument, and every option's name and value.
void validate(const MethodSpec& s) {
    bool known = s.name == "lrp" || is_cam(s.name);
    for (const auto& m : list_methods()) known |= m.name == s.name;
    if (!known) {
        std::string all;
        for (const auto& m : list_methods()) all += (all.empty() ? "" : ", ") + m.usage;
        GB_FAIL("unknown method '", s.text, "' (methods: ", all, ")");
    }
    if (s.name == "lrp") {
        GB_CHECK(!s.arg.empty(), "method '", s.text, "': name a composite, e.g. lrp:epsilon-plus-flat");
        const auto names = Composite::preset_names();
        if (std::find(names.begin(), names.end(), s.arg) == names.end()) {
            std::string all;
            for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
            GB_FAIL("method '", s.text, "': unknown composite '", s.arg, "' (composites: ", all, ")");
        }
    } else {
        GB_CHECK(s.arg.empty() || is_cam(s.name), "method '", s.text, "' takes no ':", s.arg, "' argument");
    }
    for (const auto& [key, value] : s.params) {
        switch (param_spec(s, key).kind) {
            case ParamSpec::Int: int_param(s, key, 0); break;
            case ParamSpec::Seed: seed_param(s); break;
            case ParamSpec::Number: float_param(s, key, 0.f); break;
            case ParamSpec::Rule: parse_integration_rule(value); break;
        }
    }
}

}  // namespace

MethodSpec parse_method(const std::string& text) {
    MethodSpec s;
    s.text = text;
    const auto colon = text.find(':');
    s.name = text.substr(0, colon);
    GB_CHECK(!s.name.empty(), "empty method name in '", text, "'");
    if (colon == std::string::npos) {
        validate(s);
        return s;
    }
    std::stringstream in(text.substr(colon + 1));
    std::string item;
    while (std::getline(in, item, ',')) {
        const auto eq = item.find('=');
        if (eq == std::string::npos) {
            GB_CHECK(s.arg.empty() && !item.empty(), "method '", text, "': expected name:arg,key=value,...");
            s.arg = item;
        } else {
            GB_CHECK(eq > 0, "method '", text, "': option without a name");
            GB_CHECK(!s.params.count(item.substr(0, eq)), "method '", text, "': option '", item.substr(0, eq), "' is given twice");
            s.params[item.substr(0, eq)] = item.substr(eq + 1);
        }
    }
    validate(s);
    return s;
}

std::vector<MethodInfo> list_methods() {
    std::vector<MethodInfo> out;
    for (const auto& c : Composite::preset_names())
        out.push_back({"lrp:" + c, "relevance", "lrp:" + c, "LRP with the " + c + " composite"});
    out.push_back({"gradcam", "cam", "gradcam[:LAYER]", "Grad-CAM at LAYER (default: the last Conv2d's rectified output)"});
    out.push_back({"gradcam++", "cam", "gradcam++[:LAYER]", "Grad-CAM++"});
    out.push_back({"xgradcam", "cam", "xgradcam[:LAYER]", "XGrad-CAM"});
    out.push_back({"layercam", "cam", "layercam[:LAYER]", "LayerCAM"});
    out.push_back({"scorecam", "cam", "scorecam[:LAYER]", "Score-CAM (one forward pass per channel, batched)"});
    out.push_back({"saliency", "gradient", "saliency", "max over channels of |gradient|"});
    out.push_back({"gradient", "gradient", "gradient", "the input gradient of the target logit"});
    out.push_back({"gradxinput", "gradient", "gradxinput", "gradient x input"});
    out.push_back({"guided-backprop", "gradient", "guided-backprop", "guided backpropagation"});
    out.push_back({"deeplift", "gradient", "deeplift", "DeepLIFT (rescale), zero baseline"});
    out.push_back({"smoothgrad", "gradient", "smoothgrad[:samples=25,noise=0.15,seed=0]", "SmoothGrad"});
    out.push_back({"ig", "gradient", "ig[:steps=50,rule=gausslegendre|riemann_trapezoid|riemann_left|riemann_right|riemann_middle]",
                   "Integrated Gradients, zero baseline"});
    out.push_back({"occlusion", "perturbation", "occlusion[:window=4,stride=4,baseline=LOW]",
                   "score drop when a window is set to the baseline (default: the input's lower bound, black), averaged per pixel"});
    out.push_back({"lime", "perturbation", "lime[:samples=100,segments=25,compactness=0.1,seed=0,baseline=LOW]",
                   "LIME on SLIC superpixels: weighted ridge regression of the score on switched-off superpixels"});
    out.push_back({"kernelshap", "perturbation", "kernelshap[:samples=100,segments=25,compactness=0.1,seed=0,baseline=LOW]",
                   "KernelSHAP on SLIC superpixels: Shapley-kernel regression with exact efficiency"});
    out.push_back({"random", "baseline", "random[:seed=0]", "uniform random map (the baseline for evaluation metrics)"});
    return out;
}

Attribution attribute(const Trace& trace, const MethodSpec& s, const std::vector<Target>& targets,
                      const PresetOptions& preset) {
    validate(s);  // a MethodSpec may also be built by hand
    if (s.name == "lrp") {
        PresetOptions p = preset;
        p.epsilon = float_param(s, "epsilon", p.epsilon);
        p.gamma = float_param(s, "gamma", p.gamma);
        const Composite c = Composite::preset(s.arg, p);
        return {trace.relevance(c, trace.seed(targets))[0], true, trace.canonizer_note(c.canonizer())};
    }
    for (const auto& cname : kCams)
        if (s.name == cname) {
            const std::string layer = s.arg.empty() ? default_cam_layer(trace) : s.arg;
            return {cam(trace, parse_cam_method(s.name), layer, trace.seed(targets)).map, false};
        }
    const Tensor seed = trace.seed(targets);
    if (s.name == "saliency") return {saliency(trace, seed), false};
    if (s.name == "gradient") return {gradient_map(trace, seed), true};
    if (s.name == "gradxinput") return {gradient_x_input(trace, seed), true};
    if (s.name == "guided-backprop") return {guided_backprop(trace, seed), true};
    if (s.name == "deeplift") return {deeplift(trace, seed), true};
    if (s.name == "smoothgrad") {
        SmoothGradOptions o;
        o.samples = int_param(s, "samples", o.samples);
        o.noise = float_param(s, "noise", o.noise);
        o.seed = seed_param(s);
        return {smoothgrad(trace, targets, o), true};
    }
    if (s.name == "ig") {
        IntegratedGradientsOptions o;
        o.steps = int_param(s, "steps", o.steps);
        if (s.params.count("rule")) o.rule = parse_integration_rule(s.params.at("rule"));
        return {integrated_gradients(trace, targets, o), true};
    }
    if (s.name == "occlusion") {
        OcclusionOptions o;
        o.window = int_param(s, "window", o.window);
        o.stride = int_param(s, "stride", o.stride);
        o.baseline = float_param(s, "baseline", preset.low.value_or(0.f));
        return {occlusion(trace.model(), trace.input(), seed, o), true};
    }
    if (s.name == "lime" || s.name == "kernelshap") {
        SurrogateOptions o;
        o.samples = int_param(s, "samples", o.samples);
        o.slic.segments = int_param(s, "segments", o.slic.segments);
        o.slic.compactness = float_param(s, "compactness", o.slic.compactness);
        o.seed = seed_param(s);
        o.baseline = float_param(s, "baseline", preset.low.value_or(0.f));
        const auto r = s.name == "lime" ? lime(trace.model(), trace.input(), seed, o) : kernel_shap(trace.model(), trace.input(), seed, o);
        return {r.map, true};
    }
    if (s.name == "random") {
        const Tensor& x = trace.input();
        return {random_map(x.dim(0), x.dim(2), x.dim(3), seed_param(s), x.device()), false};
    }
    GB_FAIL("method '", s.text, "' is listed but not dispatched by attribute()");  // validate() knows every other name
}

}  // namespace gb::explain
