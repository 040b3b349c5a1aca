#include "layers/sequential.h"

#include "core/profile.h"
#include "layers/activation.h"
#include "layers/conv2d.h"

namespace gb::layers {

Layer& Sequential::operator[](size_t i) const {
    GB_CHECK(i < children().size(), "Sequential: index ", i, " out of range (", children().size(), " children)");
    return *children()[i].second;
}

Layer& Sequential::child(const std::string& name) const {
    for (const auto& [n, c] : children())
        if (n == name) return *c;
    GB_FAIL("Sequential: no child named '", name, "'");
}

// A Conv2d followed by a ReLU, neither with hooks, runs as one fused call
// (Conv2d::forward_relu): the pre-activation is never stored and the ReLU costs
// no pass of its own. Hooks (explain::Trace sets them on every layer) keep the
// two layers apart.
Tensor Sequential::forward(const Tensor& x) {
    Tensor cur = x;
    const auto& ch = children();
    for (size_t i = 0; i < ch.size(); ++i) {
        Layer& layer = *ch[i].second;
        auto* conv = dynamic_cast<Conv2d*>(&layer);
        if (conv && i + 1 < ch.size() && dynamic_cast<const ReLU*>(ch[i + 1].second.get()) && !layer.has_hooks() &&
            !ch[i + 1].second->has_hooks()) {
            const profile::Scope scope(conv, "forward + ReLU");
            cur = conv->forward_relu(cur);
            ++i;
            continue;
        }
        cur = layer(cur);
    }
    return cur;
}

}  // namespace gb::layers
