// Explanation methods by name, for the command line and for evaluation:
// a spec "name[:arg][,key=value...]" such as
//   lrp:epsilon-plus-flat   gradcam   gradcam:features.7   scorecam
//   saliency   gradient   gradxinput   guided-backprop   deconvnet   deeplift
//   smoothgrad:samples=25,noise=0.15   ig:steps=50,rule=gausslegendre
//   occlusion:window=4,stride=4   lime:samples=100   kernelshap:segments=25   random:seed=1
// and one function that computes its map for a trace and targets. The methods,
// their arguments and options are the table of explain/method_registry.h.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "composite.h"
#include "method_registry.h"
#include "trace.h"

namespace gb::explain {

struct MethodSpec {
    std::string name;                          // "lrp", "gradcam", "ig" ... (an alias is replaced by the name)
    std::string arg;                           // composite for lrp, layer for CAMs
    std::map<std::string, std::string> params; // key=value options
    std::string text;                          // as given
    std::string label() const { return text; }
};

// Parses and validates (method, argument, every option's name and value) without a model;
// gb::Error naming the spec, with "did you mean" for a near miss.
MethodSpec parse_method(const std::string& text);

// Every method (for `glassbox explain --list`): the table of method_registry.h.
std::vector<MethodInfo> list_methods();

struct Attribution {
    Tensor map;      // [N, C, H, W] (C = input channels) or [N, 1, H, W]
    bool is_signed;  // relevance / gradients (diverging colours) vs CAMs / saliency (sequential)
    std::string note = "";  // what was applied beyond the method itself (the canonizer), for reports; may be empty
    std::string layer = "";  // CAMs: the layer whose feature maps were weighted (the spec's, or the default); else empty
};

// The map of `spec` for the traced batch. `preset` carries the input range (ZBox bounds, the black
// value of perturbation baselines) and the canonizer (BatchNorm merging by default) for LRP.
Attribution attribute(const Trace& trace, const MethodSpec& spec, const std::vector<Target>& targets,
                      const PresetOptions& preset = {});

}  // namespace gb::explain
