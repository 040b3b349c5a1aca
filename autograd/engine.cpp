// The backward pass over a recorded graph (see engine.h), one algorithm for gradients and relevance.
//
// The graph: an interior tensor's grad_fn is a Node; a node's next() edges point at the nodes that produced its
// inputs, or at leaves (a TensorImpl that requires a gradient and has no grad_fn). Nodes are numbered in creation
// order (Node::sequence()), so a node's sequence is larger than that of every node below it.
//
// run() is Kahn's algorithm in reverse topological order, as PyTorch's engine (GraphRun holds one run's state, and
// each step is one of its methods: mark_below_captures, count_dependencies, seed_roots, compute):
//   1. With prune_to_captures, a post-order walk from the roots marks each node with `below`: whether a captured
//      tensor (node or leaf) lies under it. A node without one is reached but never computes.
//   2. pending[n]: the number of edges into n from nodes that compute, over the part of the graph reachable from
//      the roots through such nodes.
//   3. The seeds go into buffer[] (summed where a root repeats); a root nothing else feeds is ready at once.
//   4. The ready node with the largest sequence is taken; its output hooks see the total in its buffer, it is
//      captured if asked, its saved tensors are checked (Node::check_saved), and node_override, else backward() or
//      relevance(), gives one tensor per edge: summed into the next node's buffer (arrive) or into a leaf
//      (deliver_leaf). A node whose pending count reaches 0 is ready.
// Invariants: a node computes at most once, and only after every computing node above it has delivered, so its
// buffer holds the whole total, which hooks, captures and relevance rules must see. Sums make fresh tensors
// (sum_of), never add in place: a buffer may be a caller's seed or a tensor another node returned or keeps.
// Taking the latest node first is not needed for correctness (the counts give that) but fixes the order of the
// sums at a fan-in and of hook calls, so the same graph gives the same bits every run. A leaf's hooks run on each
// contribution as it arrives, not on its total; leaf.grad and a captured leaf sum them. Without retain_graph the
// nodes taken from the ready queue (pruned ones too) are released at the end (Node::mark_released: saved tensors
// dropped), and a later pass through one of them is a gb::Error.
#include "autograd/engine.h"

#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "autograd/node.h"
#include "core/factory.h"
#include "core/profile.h"
#include "kernels/backend.h"

namespace gb::autograd {

namespace {

// out = a + b (fresh tensor: buffers may alias tensors owned elsewhere).
Tensor sum_of(const Tensor& a, const Tensor& b) {
    check_shape(b, a.shape(), "gradient accumulation");
    check_same_device(a, b, "gradient accumulation");
    Tensor out(a.shape(), DType::Float32, a.device());
    kernels::backend_for(a.device()).add(a.numel(), a.data<float>(), b.data<float>(), out.data<float>());
    return out;
}

Tensor apply_hooks(const std::shared_ptr<HookList>& hooks, Tensor g) {
    if (!hooks) return g;
    // Copy: a hook may remove itself (or others) while running.
    const auto list = hooks->hooks;
    for (const auto& [id, hook] : list) {
        std::optional<Tensor> replaced = hook(g);
        if (replaced) {
            check_shape(*replaced, g.shape(), "a gradient hook's replacement");
            g = *replaced;
        }
    }
    return g;
}

struct ByLatest {
    bool operator()(const Node* a, const Node* b) const { return a->sequence() < b->sequence(); }
};

// The state of one run(), with one method per step of the algorithm above (the numbers are the header's).
class GraphRun {
public:
    GraphRun(const std::vector<Tensor>& capture, const RunOptions& options) : options_(options) {
        index_captures(capture);
    }

    std::vector<Tensor> run(const std::vector<Tensor>& roots, const std::vector<Tensor>& seeds) {
        if (options_.prune_to_captures) mark_below_captures(roots);  // 1
        count_dependencies(roots);                                    // 2
        seed_roots(roots, seeds);                                     // 3
        while (!ready_.empty()) {                                     // 4
            Node* n = ready_.top();
            ready_.pop();
            compute(n);
        }
        // Leaves whose edges never carried anything (their nodes received nothing) are done now.
        if (options_.leaf_done)
            for (TensorImpl* leaf : leaf_order_)
                if (leaf_pending_[leaf] > 0) {
                    leaf_pending_[leaf] = 0;
                    options_.leaf_done(*leaf);
                }
        // Released after the pass, not as it goes: a pass that throws midway (a hook, a changed saved tensor) leaves
        // the graph as it was. Nodes that received nothing were never taken, and keep their saved tensors.
        if (!options_.retain_graph)
            for (Node* n : visited_) n->mark_released();
        return std::move(captured_);
    }

private:
    // Captures: interior tensors by their node, leaves by their impl.
    void index_captures(const std::vector<Tensor>& capture) {
        for (size_t i = 0; i < capture.size(); ++i) {
            GB_CHECK(capture[i].defined() && capture[i].requires_grad(), "backward: input ", i,
                     " to differentiate with respect to does not require a gradient");
            if (capture[i].grad_fn())
                capture_node_[capture[i].grad_fn().get()] = i;
            else
                capture_leaf_[capture[i].impl_ptr().get()] = i;
        }
        captured_.resize(capture.size());
    }

    // With prune_to_captures, a node runs its backward only when a captured tensor lies below it.
    bool runs(const Node* n) const { return !options_.prune_to_captures || below_.at(n); }

    // Step 1. Post-order walk with an explicit stack of (node, next edge to try): no recursion, so the depth of
    // the graph is not bounded by the call stack. A node's `below` is set once all its inputs' are.
    void mark_below_captures(const std::vector<Tensor>& roots) {
        for (const Tensor& r : roots) {
            if (!r.defined() || !r.grad_fn() || below_.count(r.grad_fn().get())) continue;
            std::vector<std::pair<Node*, size_t>> st{{r.grad_fn().get(), 0}};
            while (!st.empty()) {
                Node* n = st.back().first;
                const size_t i = st.back().second++;
                if (i < n->next().size()) {
                    Node* m = n->next()[i].fn.get();
                    if (m && !below_.count(m)) st.emplace_back(m, 0);
                    continue;
                }
                bool b = false;
                for (const Edge& e : n->next())
                    b = b || (e.fn && (capture_node_.count(e.fn.get()) || below_.at(e.fn.get()))) ||
                        (e.leaf && capture_leaf_.count(e.leaf.get()));
                below_[n] = b;
                st.pop_back();
            }
        }
    }

    // Step 2. Dependency counts over the reachable graph (the part that runs, when pruning).
    void count_dependencies(const std::vector<Tensor>& roots) {
        std::vector<Node*> stack;
        std::unordered_set<Node*> seen;
        for (const Tensor& r : roots) {
            GB_CHECK(r.defined(), "backward: undefined root tensor");
            if (Node* n = r.grad_fn().get(); n && seen.insert(n).second) stack.push_back(n);
        }
        while (!stack.empty()) {
            Node* n = stack.back();
            stack.pop_back();
            // A node that will not compute sends nothing down, so the nodes below it must not wait for it.
            if (!runs(n)) continue;
            for (const Edge& e : n->next()) {
                if (e.leaf && options_.leaf_done && leaf_pending_[e.leaf.get()]++ == 0)
                    leaf_order_.push_back(e.leaf.get());
                if (!e.fn) continue;
                ++pending_[e.fn.get()];
                if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
            }
        }
    }

    // Step 3. The seeds into the roots' buffers; roots nothing else feeds are ready.
    void seed_roots(const std::vector<Tensor>& roots, const std::vector<Tensor>& seeds) {
        for (size_t i = 0; i < roots.size(); ++i) {
            const Tensor& r = roots[i];
            GB_CHECK(r.requires_grad(), "backward: root ", i, " (shape ", r.shape().str(),
                     ") does not require a gradient; was it computed under NoGradGuard or from constants?");
            check_shape(seeds[i], r.shape(), "backward seed");
            check_same_device(seeds[i], r, "backward seed");
            // A root that is a leaf: its seed is its gradient.
            if (!r.grad_fn()) {
                deliver_leaf(r.impl_ptr(), seeds[i]);
                if (options_.leaf_done && leaf_pending_[r.impl_ptr().get()] == 0) options_.leaf_done(r.impl());
                continue;
            }
            Node* n = r.grad_fn().get();
            auto it = buffer_.find(n);
            buffer_[n] = it == buffer_.end() ? seeds[i] : sum_of(it->second, seeds[i]);
        }
        // A root that is also below another root waits for that root's share, like any node.
        for (auto& [n, g] : buffer_)
            if (pending_[n] == 0) ready_.push(n);
    }

    // Step 4, one node: hooks, capture, check_saved, then its backward / relevance / override, sent down its edges.
    void compute(Node* n) {
        GB_CHECK(!n->released(), "backward through ", n->name(),
                 " a second time: its saved tensors were freed after the first backward. "
                 "Pass retain_graph = true to the first backward to run it again.");
        Tensor g = apply_hooks(n->output_hooks(), buffer_[n]);
        buffer_.erase(n);
        // Hooks and capture come before the pruning test: a pass that stops at a captured layer (Grad-CAM) still
        // sees the total there, without running that layer's own backward.
        if (auto it = capture_node_.find(n); it != capture_node_.end()) captured_[it->second] = g;
        if (!runs(n)) {
            visited_.push_back(n);
            return;
        }
        // Just before the node computes: a saved tensor written in place since the forward would give a wrong
        // answer silently, so it fails loudly instead.
        n->check_saved();
        // explain/ substitutes a rule's relevance (or a modified ReLU backward) here; nullopt: the node's own.
        const void* owner = n->profile_owner();
        const profile::Scope scope(owner, !profile::enabled() ? std::string()
                                          : owner           ? std::string(options_.mode == Mode::Gradient ? "backward"
                                                                                                          : "relevance")
                                                            : n->name());
        std::optional<std::vector<Tensor>> chosen;
        if (options_.node_override) chosen = options_.node_override(*n, g);
        std::vector<Tensor> grads =
            chosen ? std::move(*chosen) : (options_.mode == Mode::Gradient ? n->backward(g) : n->relevance(g));
        visited_.push_back(n);
        const auto& next = n->next();
        GB_CHECK(grads.size() == next.size(), n->name(), " returned ", grads.size(), " gradients for ",
                 next.size(), " inputs");
        for (size_t i = 0; i < next.size(); ++i) {
            const Edge& e = next[i];
            if (!e.valid()) continue;
            if (e.leaf) {
                if (grads[i].defined()) deliver_leaf(e.leaf, grads[i]);
                if (options_.leaf_done && --leaf_pending_[e.leaf.get()] == 0) options_.leaf_done(*e.leaf);
                continue;
            }
            // Also when undefined: the edge is settled either way.
            arrive(e.fn.get(), grads[i]);
        }
    }

    // A node is ready once every edge into it has delivered. Nothing at all arriving (all parents produced no
    // gradient) settles its edges in turn. Only a node that computes counted its edges in `pending`, so only such
    // a node settles them. A worklist rather than recursion, for the same reason as mark_below_captures.
    void arrive(Node* first, const Tensor& g) {
        std::vector<std::pair<Node*, Tensor>> todo{{first, g}};
        while (!todo.empty()) {
            auto [m, gm] = std::move(todo.back());
            todo.pop_back();
            if (gm.defined()) {
                auto it = buffer_.find(m);
                if (it == buffer_.end())
                    buffer_.emplace(m, gm);
                else
                    it->second = sum_of(it->second, gm);
            }
            if (--pending_[m] != 0) continue;
            if (buffer_.count(m))
                ready_.push(m);
            else if (runs(m))
                for (const Edge& e : m->next())
                    if (e.fn) todo.emplace_back(e.fn.get(), Tensor());
        }
    }

    // A contribution reaching a leaf: its hooks, a capture, and (unless only capturing) leaf.grad.
    void deliver_leaf(const std::shared_ptr<TensorImpl>& leaf, Tensor g) {
        g = apply_hooks(leaf->hooks, g);
        auto it = capture_leaf_.find(leaf.get());
        if (it != capture_leaf_.end())
            captured_[it->second] = captured_[it->second].defined() ? sum_of(captured_[it->second], g) : g;
        if (!options_.accumulate_into_leaves) return;
        // A clone: g may be a seed or a tensor a node keeps, and leaf.grad is added to in place from here on
        // (across runs too, until the optimizer's zero_grad).
        if (!leaf->grad) {
            leaf->grad = g.clone().impl_ptr();
        } else {
            Tensor acc(leaf->grad);
            check_shape(g, acc.shape(), "gradient accumulation into a leaf");
            kernels::backend_for(acc.device()).axpy(g.numel(), 1.f, g.data<float>(), acc.data<float>());
        }
    }

    const RunOptions& options_;
    std::unordered_map<const Node*, size_t> capture_node_;
    std::unordered_map<const TensorImpl*, size_t> capture_leaf_;
    std::vector<Tensor> captured_;
    std::unordered_map<const Node*, bool> below_;  // step 1
    std::unordered_map<Node*, int> pending_;       // step 2: edges still to deliver into each node
    std::unordered_map<Node*, Tensor> buffer_;     // totals arrived so far
    std::priority_queue<Node*, std::vector<Node*>, ByLatest> ready_;
    // With leaf_done: edges into each leaf from nodes that compute, still to deliver; leaves in order met.
    std::unordered_map<TensorImpl*, int> leaf_pending_;
    std::vector<TensorImpl*> leaf_order_;
    std::vector<Node*> visited_;  // taken from the ready queue: released at the end without retain_graph
};

}  // namespace

std::vector<Tensor> run(const std::vector<Tensor>& roots, const std::vector<Tensor>& seeds,
                        const std::vector<Tensor>& capture, const RunOptions& options) {
    GB_CHECK(roots.size() == seeds.size(), "backward: ", roots.size(), " roots but ", seeds.size(), " seeds");
    return GraphRun(capture, options).run(roots, seeds);
}

void backward(const Tensor& root, const Tensor& grad, bool retain_graph,
              const std::function<void(TensorImpl& leaf)>& leaf_done) {
    Tensor seed = grad;
    if (!seed.defined()) {
        GB_CHECK(root.defined() && root.numel() == 1, "backward() without a gradient needs a single-element root, "
                 "got shape ", root.defined() ? root.shape().str() : std::string("(undefined)"),
                 "; pass the gradient of the output explicitly");
        seed = ones(root.shape(), root.device());
    }
    RunOptions opts;
    opts.retain_graph = retain_graph;
    opts.leaf_done = leaf_done;
    run({root}, {seed}, {}, opts);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph) {
    RunOptions opts;
    opts.retain_graph = retain_graph;
    opts.accumulate_into_leaves = false;
    return run(outputs, grad_outputs, inputs, opts);
}

}  // namespace gb::autograd
