#include "explain/canonizer.h"

#include <set>

#include "core/error.h"

namespace gb::explain {

using layers::Capability;

Canonizer parse_canonizer(const std::string& name) {
    if (name == "batchnorm") return Canonizer::BatchNorm;
    if (name == "none") return Canonizer::None;
    GB_FAIL("unknown canonizer '", name, "' (known: batchnorm, none)");
}

std::string canonizer_name(Canonizer c) { return c == Canonizer::BatchNorm ? "batchnorm" : "none"; }

std::vector<BatchNormMerge> batchnorm_merges(layers::Layer& model) {
    std::vector<BatchNormMerge> out;
    for (const auto& [path, layer] : model.named_layers()) {
        const auto& kids = layer->children();
        const std::string prefix = path.empty() ? "" : path + ".";
        for (size_t i = 0; i + 1 < kids.size(); ++i) {
            // A layer with a weight to scale (linear-like with learned parameters), then a per-channel affine map.
            if (kids[i].second->has_any(Capability::Convolution | Capability::FullyConnected) &&
                kids[i + 1].second->has(Capability::ChannelAffine))
                out.push_back({prefix + kids[i].first, prefix + kids[i + 1].first});
        }
    }
    return out;
}

std::vector<std::string> unmerged_batchnorms(layers::Layer& model) {
    std::set<std::string> merged;
    for (const auto& m : batchnorm_merges(model)) merged.insert(m.norm);
    std::vector<std::string> out;
    for (const auto& [path, layer] : model.named_layers())
        if (layer->has(Capability::ChannelAffine) && !merged.count(path)) out.push_back(path);
    return out;
}

}  // namespace gb::explain
