#include "explain/methods.h"

#include <sstream>

#include "explain/cam.h"
#include "explain/gradient_methods.h"
#include "explain/lime.h"
#include "explain/perturbation.h"

namespace gb::explain {

namespace {

const std::vector<std::string> kCams = {"gradcam", "gradcam++", "xgradcam", "layercam", "scorecam"};

int64_t int_param(const MethodSpec& s, const std::string& key, int64_t fallback) {
    auto it = s.params.find(key);
    if (it == s.params.end()) return fallback;
    try {
        size_t used = 0;
        const long long v = std::stoll(it->second, &used);
        GB_CHECK(used == it->second.size(), "");
        return v;
    } catch (const std::exception&) {
        GB_FAIL("method '", s.text, "': ", key, "=", it->second, " is not an integer");
    }
}

float float_param(const MethodSpec& s, const std::string& key, float fallback) {
    auto it = s.params.find(key);
    if (it == s.params.end()) return fallback;
    try {
        size_t used = 0;
        const float v = std::stof(it->second, &used);
        GB_CHECK(used == it->second.size(), "");
        return v;
    } catch (const std::exception&) {
        GB_FAIL("method '", s.text, "': ", key, "=", it->second, " is not a number");
    }
}

void allow_params(const MethodSpec& s, const std::vector<std::string>& keys) {
    for (const auto& [k, v] : s.params) {
        bool ok = false;
        for (const auto& a : keys) ok |= a == k;
        std::string known;
        for (const auto& a : keys) known += (known.empty() ? "" : ", ") + a;
        GB_CHECK(ok, "method '", s.text, "': unknown option '", k, "'", keys.empty() ? " (it takes none)" : " (options: " + known + ")");
    }
}

}  // namespace

MethodSpec parse_method(const std::string& text) {
    MethodSpec s;
    s.text = text;
    const auto colon = text.find(':');
    s.name = text.substr(0, colon);
    GB_CHECK(!s.name.empty(), "empty method name in '", text, "'");
    if (colon == std::string::npos) return s;
    std::stringstream in(text.substr(colon + 1));
    std::string item;
    while (std::getline(in, item, ',')) {
        const auto eq = item.find('=');
        if (eq == std::string::npos) {
            GB_CHECK(s.arg.empty() && !item.empty(), "method '", text, "': expected name:arg,key=value,...");
            s.arg = item;
        } else {
            GB_CHECK(eq > 0, "method '", text, "': option without a name");
            s.params[item.substr(0, eq)] = item.substr(eq + 1);
        }
    }
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
    if (s.name == "lrp") {
        allow_params(s, {"epsilon", "gamma"});
        GB_CHECK(!s.arg.empty(), "method '", s.text, "': name a composite, e.g. lrp:epsilon-plus-flat");
        PresetOptions p = preset;
        p.epsilon = float_param(s, "epsilon", p.epsilon);
        p.gamma = float_param(s, "gamma", p.gamma);
        const Composite c = Composite::preset(s.arg, p);
        return {trace.relevance(c, trace.seed(targets))[0], true, trace.canonizer_note(c.canonizer())};
    }
    for (const auto& cname : kCams)
        if (s.name == cname) {
            allow_params(s, {});
            const std::string layer = s.arg.empty() ? default_cam_layer(trace) : s.arg;
            return {cam(trace, parse_cam_method(s.name), layer, trace.seed(targets)).map, false};
        }
    GB_CHECK(s.arg.empty() || s.name == "lrp", "method '", s.text, "' takes no ':", s.arg, "' argument");
    const Tensor seed = trace.seed(targets);
    if (s.name == "saliency" || s.name == "gradient" || s.name == "gradxinput" || s.name == "guided-backprop" ||
        s.name == "deeplift")
        allow_params(s, {});
    if (s.name == "saliency") return {saliency(trace, seed), false};
    if (s.name == "gradient") return {gradient_map(trace, seed), true};
    if (s.name == "gradxinput") return {gradient_x_input(trace, seed), true};
    if (s.name == "guided-backprop") return {guided_backprop(trace, seed), true};
    if (s.name == "deeplift") return {deeplift(trace, seed), true};
    if (s.name == "smoothgrad") {
        allow_params(s, {"samples", "noise", "seed"});
        SmoothGradOptions o;
        o.samples = int_param(s, "samples", o.samples);
        o.noise = float_param(s, "noise", o.noise);
        o.seed = static_cast<uint64_t>(int_param(s, "seed", 0));
        return {smoothgrad(trace, targets, o), true};
    }
    if (s.name == "ig") {
        allow_params(s, {"steps", "rule"});
        IntegratedGradientsOptions o;
        o.steps = int_param(s, "steps", o.steps);
        if (s.params.count("rule")) o.rule = parse_integration_rule(s.params.at("rule"));
        return {integrated_gradients(trace, targets, o), true};
    }
    if (s.name == "occlusion") {
        allow_params(s, {"window", "stride", "baseline"});
        OcclusionOptions o;
        o.window = int_param(s, "window", o.window);
        o.stride = int_param(s, "stride", o.stride);
        o.baseline = float_param(s, "baseline", preset.low.value_or(0.f));
        return {occlusion(trace.model(), trace.input(), seed, o), true};
    }
    if (s.name == "lime" || s.name == "kernelshap") {
        allow_params(s, {"samples", "segments", "compactness", "seed", "baseline"});
        SurrogateOptions o;
        o.samples = int_param(s, "samples", o.samples);
        o.slic.segments = int_param(s, "segments", o.slic.segments);
        o.slic.compactness = float_param(s, "compactness", o.slic.compactness);
        o.seed = static_cast<uint64_t>(int_param(s, "seed", 0));
        o.baseline = float_param(s, "baseline", preset.low.value_or(0.f));
        const auto r = s.name == "lime" ? lime(trace.model(), trace.input(), seed, o) : kernel_shap(trace.model(), trace.input(), seed, o);
        return {r.map, true};
    }
    if (s.name == "random") {
        allow_params(s, {"seed"});
        const Tensor& x = trace.input();
        return {random_map(x.dim(0), x.dim(2), x.dim(3), static_cast<uint64_t>(int_param(s, "seed", 0)), x.device()), false};
    }
    std::string known;
    for (const auto& m : list_methods()) known += (known.empty() ? "" : ", ") + m.usage;
    GB_FAIL("unknown method '", s.text, "' (methods: ", known, ")");
}

}  // namespace gb::explain
