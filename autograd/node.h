// Node: one recorded operation (a layer call or a differentiable function).
// It keeps what its backward needs and offers two backward functions over the
// same graph: backward() (the true gradient) and relevance() (LRP; a node
// without a rule of its own passes relevance through its gradient, which
// layers override where the relevance algebra differs). Nodes have one output;
// edges point at the inputs' nodes, or at leaves that require a gradient.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/tensor.h"

namespace gb::autograd {

class Node;

struct Edge {
    std::shared_ptr<Node> fn;          // the input's grad_fn (interior tensor), or
    std::shared_ptr<TensorImpl> leaf;  // the input itself (a leaf that requires a gradient)
    bool valid() const { return fn != nullptr || leaf != nullptr; }
};

class Node {
public:
    Node();
    virtual ~Node() = default;
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    virtual std::string name() const = 0;
    // The node as error messages name it (a layer node adds its layer).
    virtual std::string label() const { return name(); }
    // What the profiler (core/profile.h) files this node's passes under: its
    // layer (a layer node), else null (then by name()).
    virtual const void* profile_owner() const { return nullptr; }
    // Given the gradient at the output, the gradient for each input (in input
    // order; an undefined Tensor where needs_grad(i) is false).
    virtual std::vector<Tensor> backward(const Tensor& grad_out) = 0;
    // Relevance mode: relevance at the output -> relevance per input. The default
    // is the gradient (right for max-pool routing and linear reshapes).
    virtual std::vector<Tensor> relevance(const Tensor& relevance_out) { return backward(relevance_out); }
    // Drops saved tensors once a backward pass no longer needs them.
    virtual void release_saved() {}

    const std::vector<Edge>& next() const { return next_; }
    bool needs_grad(size_t input) const { return input < next_.size() && next_[input].valid(); }
    uint64_t sequence() const { return sequence_; }
    bool released() const { return released_; }
    void mark_released();
    const std::shared_ptr<HookList>& output_hooks() const { return output_hooks_; }
    // Raises gb::Error naming this node and the tensor when a tensor it saved for its
    // backward (see watch()) was written in place since (the role of PyTorch's version
    // counter): a pass must never compute with values the forward did not see.
    void check_saved() const;

    // Wires the node into the graph: edges to `inputs`, and `out` gets this node as grad_fn.
    void connect(const std::vector<Tensor>& inputs, Tensor& out);

protected:
    // Records `t`'s storage version now (at the forward); check_saved() compares.
    // `what` names the tensor in the error ("input", "weight" ...). Undefined tensors are ignored.
    void watch(const Tensor& t, const char* what);

private:
    struct Watched {
        std::shared_ptr<Storage> storage;
        uint64_t version;
        const char* what;
    };
    std::vector<Watched> watched_;
    std::vector<Edge> next_;
    std::shared_ptr<HookList> output_hooks_;
    uint64_t sequence_;
    bool released_ = false;
};

// Records `node` as the producer of `out` when grad mode is on and any input
// requires a gradient; otherwise `out` stays a plain tensor. Returns `out`.
Tensor record(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs, Tensor out);
// True when an operation on these inputs would be recorded.
bool should_record(const std::vector<Tensor>& inputs);

}  // namespace gb::autograd
