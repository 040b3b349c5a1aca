#include "layers/sequential.h"

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

Tensor Sequential::forward(const Tensor& x) {
    Tensor cur = x;
    for (const auto& [n, c] : children()) cur = (*c)(cur);
    return cur;
}

}  // namespace gb::layers
