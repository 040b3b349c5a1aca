// Sequential: runs its children in order. Children are named "0", "1", ... by
// default (PyTorch's numbering) or explicitly ("features", "classifier").
#pragma once

#include <memory>

#include "layer.h"

namespace gb::layers {

class Sequential : public Layer {
public:
    Sequential() = default;
    std::string type() const override { return "Sequential"; }

    // Appends a child named by its position; returns it for chaining setup.
    template <typename L> std::shared_ptr<L> add(std::shared_ptr<L> layer) {
        add_child(std::to_string(children().size()), layer);
        return layer;
    }
    template <typename L> std::shared_ptr<L> add(const std::string& name, std::shared_ptr<L> layer) {
        add_child(name, layer);
        return layer;
    }
    size_t size() const { return children().size(); }
    Layer& operator[](size_t i) const;
    // The child with this name ("3", "features"); gb::Error if none.
    Layer& child(const std::string& name) const;

protected:
    Tensor forward(const Tensor& x) override;
};

}  // namespace gb::layers
