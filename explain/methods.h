// Explanation methods by name, for the command line and for evaluation:
// a spec "name[:arg][,key=value...]" such as
//   lrp:epsilon-plus-flat   gradcam   gradcam:features.7   scorecam
//   saliency   gradient   gradxinput   guided-backprop   deeplift
//   smoothgrad:samples=25,noise=0.15   ig:steps=50,rule=gausslegendre
//   occlusion:window=4,stride=4   lime:samples=100   kernelshap:segments=25   random:seed=1
// and one function that computes its map for a trace and targets.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "explain/composite.h"
#include "explain/trace.h"

namespace gb::explain {

struct MethodSpec {
    std::string name;                          // "lrp", "gradcam", "ig" ...
    std::string arg;                           // composite for lrp, layer for CAMs
    std::map<std::string, std::string> params; // key=value options
    std::string text;                          // as given
    std::string label() const { return text; }
};

MethodSpec parse_method(const std::string& text);

struct MethodInfo {
    std::string name, kind, usage, description;
};
// Every method with its parameters (for `glassbox explain --list`).
std::vector<MethodInfo> list_methods();

struct Attribution {
    Tensor map;      // [N, C, H, W] (C = input channels) or [N, 1, H, W]
    bool is_signed;  // relevance / gradients (diverging colours) vs CAMs / saliency (sequential)
    std::string note = "";  // what was applied beyond the method itself (the canonizer), for reports; may be empty
};

// The map of `spec` for the traced batch. `preset` carries the input range (ZBox bounds, the black
// value of perturbation baselines) and the canonizer (BatchNorm merging by default) for LRP.
Attribution attribute(const Trace& trace, const MethodSpec& spec, const std::vector<Target>& targets,
                      const PresetOptions& preset = {});

}  // namespace gb::explain
