#include "layers/sequential.h"

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

// A Conv2d followed by a ReLU, neither with hooks, runs as one fused call when it
// records no graph (inference): the pre-activation is never stored.
Tensor Sequential::forward(const Tensor& x) {
    Tensor cur = x;
    const auto& ch = children();
    for (size_t i = 0; i < ch.size(); ++i) {
        Layer& layer = *ch[i].second;
        if (i + 1 < ch.size() && !layer.has_hooks() && !ch[i + 1].second->has_hooks() &&
            dynamic_cast<const ReLU*>(ch[i + 1].second.get()))
            if (auto* conv = dynamic_cast<Conv2d*>(&layer))
                if (auto y = conv->forward_relu_without_graph(cur)) {
                    cur = std::move(*y);
                    ++i;
                    continue;
                }
        cur = layer(cur);
    }
    return cur;
}

}  // namespace gb::layers
