#include "layers/layer.h"

#include <algorithm>

#include "core/factory.h"
#include "core/profile.h"
#include "layers/layer_node.h"

namespace gb::layers {

std::string capability_name(Capability c) {
    switch (c) {
        case Capability::LinearLike: return "linear-like layers";
        case Capability::Convolution: return "convolutions";
        case Capability::FullyConnected: return "fully connected layers";
        case Capability::AveragePool: return "average pools";
        case Capability::ChannelAffine: return "per-channel affine layers";
        case Capability::Rectifier: return "rectifiers";
    }
    return "?";
}

namespace {
std::string join(const std::string& prefix, const std::string& name) {
    return prefix.empty() ? name : prefix + "." + name;
}
}  // namespace

Tensor Layer::operator()(const Tensor& input) {
    GB_CHECK(input.defined(), type(), ": called with an undefined tensor");
    const profile::Scope scope(this, "forward");
    Tensor out = forward(input);
    // The node this call recorded belongs to this layer (inner layers claim theirs first).
    if (auto* node = dynamic_cast<LayerNode*>(out.defined() ? out.grad_fn().get() : nullptr); node && !node->layer())
        node->set_layer(this);
    for (const auto& [id, hook] : replace_hooks_)
        if (auto r = hook(*this, input, out)) {
            GB_CHECK(r->defined() && r->shape() == out.shape() && r->dtype() == out.dtype() && r->device() == out.device(),
                     type(), ": a forward replace hook returned ", r->defined() ? r->shape().str() : std::string("nothing"),
                     " for an output ", out.shape().str());
            out = *r;
        }
    for (const auto& [id, hook] : forward_hooks_) hook(*this, input, out);
    if (!backward_hooks_.empty() && out.requires_grad()) {
        out.register_hook([this](const Tensor& g) -> std::optional<Tensor> {
            Tensor cur = g;
            bool changed = false;
            const auto hooks = backward_hooks_;
            for (const auto& [id, hook] : hooks)
                if (auto r = hook(*this, cur)) {
                    cur = *r;
                    changed = true;
                }
            return changed ? std::optional<Tensor>(cur) : std::nullopt;
        });
    }
    return out;
}

std::vector<std::pair<std::string, Tensor>> Layer::named_parameters(const std::string& prefix) const {
    std::vector<std::pair<std::string, Tensor>> out;
    for (const auto& [n, t] : params_) out.emplace_back(join(prefix, n), t);
    for (const auto& [n, c] : children_) {
        auto sub = c->named_parameters(join(prefix, n));
        out.insert(out.end(), sub.begin(), sub.end());
    }
    return out;
}

std::vector<Tensor> Layer::parameters() const {
    std::vector<Tensor> out;
    for (auto& [n, t] : named_parameters()) out.push_back(t);
    return out;
}

std::vector<std::pair<std::string, Tensor>> Layer::named_buffers(const std::string& prefix) const {
    std::vector<std::pair<std::string, Tensor>> out;
    for (const auto& [n, t] : buffers_) out.emplace_back(join(prefix, n), t);
    for (const auto& [n, c] : children_) {
        auto sub = c->named_buffers(join(prefix, n));
        out.insert(out.end(), sub.begin(), sub.end());
    }
    return out;
}

std::vector<std::pair<std::string, Tensor>> Layer::state(const std::string& prefix) const {
    auto out = named_parameters(prefix);
    auto bufs = named_buffers(prefix);
    out.insert(out.end(), bufs.begin(), bufs.end());
    return out;
}

std::vector<std::pair<std::string, Layer*>> Layer::named_layers(const std::string& prefix) {
    std::vector<std::pair<std::string, Layer*>> out{{prefix, this}};
    for (const auto& [n, c] : children_) {
        auto sub = c->named_layers(join(prefix, n));
        out.insert(out.end(), sub.begin(), sub.end());
    }
    return out;
}

void Layer::train(bool on) {
    training_ = on;
    for (auto& [n, c] : children_) c->train(on);
}

void Layer::zero_grad() {
    for (auto& [n, t] : named_parameters()) t.set_grad(Tensor());
}

void Layer::to(Device device) {
    auto move = [&](Tensor& t) {
        if (t.device() == device) return;
        Tensor moved = t.to(device);
        t.impl().storage = moved.impl().storage;
        t.impl().offset = 0;
        t.set_grad(Tensor());
    };
    for (auto& [n, t] : params_) move(t);
    for (auto& [n, t] : buffers_) move(t);
    for (auto& [n, c] : children_) c->to(device);
}

int Layer::on_forward(ForwardHook hook) {
    forward_hooks_.emplace_back(next_hook_id_, std::move(hook));
    return next_hook_id_++;
}

int Layer::on_backward(BackwardHook hook) {
    backward_hooks_.emplace_back(next_hook_id_, std::move(hook));
    return next_hook_id_++;
}

int Layer::on_forward_replace(ForwardReplaceHook hook) {
    replace_hooks_.emplace_back(next_hook_id_, std::move(hook));
    return next_hook_id_++;
}

bool Layer::remove_hook(int handle) {
    auto drop = [handle](auto& list) {
        auto it = std::find_if(list.begin(), list.end(), [&](const auto& h) { return h.first == handle; });
        if (it == list.end()) return false;
        list.erase(it);
        return true;
    };
    return drop(forward_hooks_) || drop(backward_hooks_) || drop(replace_hooks_);
}

int64_t Layer::num_parameters() const {
    int64_t n = 0;
    for (const auto& [name, t] : named_parameters()) n += t.numel();
    return n;
}

std::string Layer::summary() const {
    std::string out;
    summary_into(out, "", 0);
    return out;
}

void Layer::summary_into(std::string& out, const std::string& name, int depth) const {
    out += std::string(static_cast<size_t>(depth) * 2, ' ');
    if (!name.empty()) out += "(" + name + "): ";
    out += describe() + "\n";
    for (const auto& [n, c] : children_) c->summary_into(out, n, depth + 1);
}

Tensor Layer::add_parameter(const std::string& name, Tensor value) {
    value.set_requires_grad(true);
    params_.emplace_back(name, std::move(value));
    return params_.back().second;
}

Tensor Layer::add_buffer(const std::string& name, Tensor value) {
    buffers_.emplace_back(name, std::move(value));
    return buffers_.back().second;
}

void Layer::add_child(const std::string& name, std::shared_ptr<Layer> child) {
    GB_CHECK(child != nullptr, type(), ": child '", name, "' is null");
    for (const auto& [n, c] : children_) GB_CHECK(n != name, type(), ": a child named '", name, "' already exists");
    children_.emplace_back(name, std::move(child));
}

}  // namespace gb::layers
