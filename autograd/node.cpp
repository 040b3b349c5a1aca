#include "autograd/node.h"

#include <atomic>

#include "autograd/grad_mode.h"

namespace gb::autograd {

namespace {
std::atomic<uint64_t> g_sequence{0};
thread_local bool g_grad_enabled = true;
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

Node::Node() : sequence_(g_sequence.fetch_add(1)) {}

void Node::watch(const Tensor& t, const char* what) {
    if (t.defined()) watched_.push_back({t.impl().storage, t.version(), what});
}

void Node::check_saved() const {
    for (const Watched& w : watched_)
        GB_CHECK(w.storage->version() == w.version, label(), ": the ", w.what,
                 " it saved in the forward pass was modified in place since (version ", w.version, ", now ",
                 w.storage->version(), "); run the forward again (a new Trace) after changing the model or its inputs");
}

void Node::mark_released() {
    release_saved();
    watched_.clear();
    released_ = true;
}

void Node::connect(const std::vector<Tensor>& inputs, Tensor& out) {
    next_.clear();
    next_.reserve(inputs.size());
    for (const Tensor& in : inputs) {
        Edge e;
        if (in.defined() && in.requires_grad()) {
            if (in.grad_fn())
                e.fn = in.grad_fn();
            else
                e.leaf = in.impl_ptr();
        }
        next_.push_back(std::move(e));
    }
    output_hooks_ = out.ensure_hooks();
}

bool should_record(const std::vector<Tensor>& inputs) {
    if (!grad_enabled()) return false;
    for (const Tensor& in : inputs)
        if (in.defined() && in.requires_grad()) return true;
    return false;
}

Tensor record(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs, Tensor out) {
    if (!should_record(inputs)) return out;
    node->connect(inputs, out);
    out.set_grad_fn(node);
    return out;
}

}  // namespace gb::autograd
