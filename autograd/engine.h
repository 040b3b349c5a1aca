// Engine: runs a recorded graph backwards, in reverse topological order, in
// gradient mode or relevance mode. Gradients meeting at a fan-in are summed;
// output hooks of each node (tensor hooks, layer backward hooks) see and may
// replace the total arriving there. Without retain_graph the graph's saved
// tensors are freed after the run and a second run through it is a gb::Error.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "../core/tensor.h"

namespace gb::autograd {

class Node;

enum class Mode { Gradient, Relevance };

struct RunOptions {
    Mode mode = Mode::Gradient;
    bool retain_graph = false;
    bool accumulate_into_leaves = true;  // add into leaf.grad (false: only capture)
    // Run only the nodes that have a captured tensor below them (a Grad-CAM pass stops at its layer).
    bool prune_to_captures = false;
    // Asked first for every node; a value replaces node.backward() / node.relevance()
    // (explain/ applies the rule a composite chose for the node's layer, or a modified
    // ReLU backward for guided backprop and DeepLIFT).
    std::function<std::optional<std::vector<Tensor>>(Node& node, const Tensor& out)> node_override;
    // Called once for each leaf the run reaches, when its gradient is complete: after the last edge into it
    // delivered (added to leaf.grad), or at the end of the run for a leaf whose edges carried nothing.
    // Data-parallel training starts a bucket's allreduce there (train/data_parallel.h).
    std::function<void(TensorImpl& leaf)> leaf_done;
};

// Runs from `roots` seeded with `seeds` (same shapes). Returns, for each tensor
// in `capture`, the total gradient (or relevance) that reached it (undefined if
// none did). Leaves and interior tensors may both be captured.
std::vector<Tensor> run(const std::vector<Tensor>& roots, const std::vector<Tensor>& seeds,
                        const std::vector<Tensor>& capture = {}, const RunOptions& options = {});

// d(root)/d(leaves) accumulated into each leaf's .grad. `grad` defaults to 1
// for a single-element root; other roots need an explicit seed.
void backward(const Tensor& root, const Tensor& grad = Tensor(), bool retain_graph = false,
              const std::function<void(TensorImpl& leaf)>& leaf_done = nullptr);

// Gradients of `outputs` (seeded by `grad_outputs`) with respect to `inputs`,
// returned instead of accumulated; leaves' .grad are untouched.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph = false);

}  // namespace gb::autograd
