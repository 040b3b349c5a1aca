#include "explain/trace.h"

#include <atomic>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "core/factory.h"
#include "layers/layer_node.h"

namespace gb::explain {

namespace {
std::atomic<int64_t> g_forwards{0};
}

const layers::Layer* node_layer(const autograd::Node& node) {
    const auto* ln = dynamic_cast<const layers::LayerNode*>(&node);
    return ln ? ln->layer() : nullptr;
}

Trace::Trace(layers::Layer& model, const Tensor& input) : model_(model) {
    GB_CHECK(input.defined() && input.dtype() == DType::Float32 && input.rank() == 4,
             "explain: the input must be a float32 batch [N, C, H, W], got ",
             input.defined() ? input.shape().str() : std::string("(undefined)"));
    const bool was_training = model.is_training();
    model.eval();
    // Freeze the parameters: explanations need input gradients only.
    std::vector<Tensor> params = model.parameters();
    std::vector<bool> wanted;
    for (auto& p : params) {
        wanted.push_back(p.requires_grad());
        p.impl().requires_grad = false;
    }
    auto unfreeze = [&] {
        for (size_t i = 0; i < params.size(); ++i) params[i].impl().requires_grad = wanted[i];
    };
    std::vector<std::pair<layers::Layer*, int>> hooks;
    for (auto& [path, layer] : model.named_layers()) {
        paths_[layer] = path;
        if (path.empty()) continue;
        hooks.emplace_back(layer, layer->on_forward([this, p = path](layers::Layer&, const Tensor& in, const Tensor& out) {
            io_[p] = {in, out};
        }));
    }
    input_ = input.clone().set_requires_grad();
    try {
        autograd::GradModeGuard recording(true);
        logits_ = model(input_);
    } catch (...) {
        for (auto& [l, h] : hooks) l->remove_hook(h);
        unfreeze();
        model.train(was_training);
        throw;
    }
    ++g_forwards;
    for (auto& [l, h] : hooks) l->remove_hook(h);
    unfreeze();
    model.train(was_training);
    GB_CHECK(logits_.rank() == 2, "explain: the model's output must be [N, classes] logits, got ", logits_.shape().str());
}

Trace::~Trace() = default;

int64_t Trace::forward_passes() { return g_forwards.load(); }

const Tensor& Trace::layer_input(const std::string& path) const {
    auto it = io_.find(path);
    if (it == io_.end()) {
        std::string known;
        for (const auto& p : layer_paths()) known += (known.empty() ? "" : ", ") + p;
        GB_FAIL("explain: no layer '", path, "' in the model (layers: ", known, ")");
    }
    return it->second.first;
}

const Tensor& Trace::layer_output(const std::string& path) const {
    layer_input(path);
    return io_.at(path).second;
}

std::vector<std::string> Trace::layer_paths() const {
    std::vector<std::string> out;
    for (const auto& [l, p] : paths_)
        if (!p.empty() && l->children().empty()) out.push_back(p);
    std::sort(out.begin(), out.end());
    return out;
}

const std::string& Trace::path_of(const layers::Layer* layer) const {
    auto it = paths_.find(layer);
    GB_CHECK(it != paths_.end(), "explain: the layer is not part of the traced model");
    return it->second;
}

Tensor Trace::seed(const std::vector<Target>& targets, bool times_logit) const {
    return output_seed(targets, logits_, times_logit);
}

std::vector<Tensor> Trace::run(const Tensor& seed, const std::vector<std::string>& layers, bool relevance,
                               const NodeBackward& replace, bool with_input) const {
    check_shape(seed, logits_.shape(), "explain: output seed");
    std::vector<Tensor> capture;
    if (with_input) capture.push_back(input_);
    for (const auto& l : layers) {
        const Tensor& out = layer_output(l);
        GB_CHECK(out.requires_grad(), "explain: layer '", l, "' is not on the path from the input to the output");
        capture.push_back(out);
    }
    autograd::RunOptions o;
    o.mode = relevance ? autograd::Mode::Relevance : autograd::Mode::Gradient;
    o.retain_graph = true;
    o.accumulate_into_leaves = false;
    o.node_override = replace;
    o.prune_to_captures = !with_input;
    std::vector<Tensor> got = autograd::run({logits_}, {seed}, capture, o);
    for (size_t i = 0; i < got.size(); ++i)
        if (!got[i].defined()) got[i] = zeros(capture[i].shape(), DType::Float32, capture[i].device());
    return got;
}

std::vector<Tensor> Trace::gradient(const Tensor& seed, const std::vector<std::string>& layers) const {
    return run(seed, layers, false, nullptr);
}

std::vector<Tensor> Trace::layer_gradients(const Tensor& seed, const std::vector<std::string>& layers) const {
    GB_CHECK(!layers.empty(), "explain: layer_gradients needs at least one layer");
    return run(seed, layers, false, nullptr, false);
}

std::vector<Tensor> Trace::modified_gradient(const Tensor& seed, const NodeBackward& replace,
                                             const std::vector<std::string>& layers) const {
    return run(seed, layers, false, replace);
}

const Trace::Merges& Trace::batchnorm_merges() const {
    std::lock_guard<std::mutex> lock(merges_mutex_);
    if (merges_) return *merges_;
    auto m = std::make_unique<Merges>();
    for (const auto& [layer_path, norm_path] : explain::batchnorm_merges(model_)) {
        const auto li = io_.find(layer_path), ni = io_.find(norm_path);
        if (li == io_.end() || ni == io_.end()) continue;  // not called in the forward pass
        autograd::Node* lnode = li->second.second.grad_fn().get();
        autograd::Node* nnode = ni->second.second.grad_fn().get();
        if (!lnode || !nnode) continue;  // nothing recorded (no path from the input)
        GB_CHECK(!nnode->next().empty() && nnode->next()[0].fn.get() == lnode, "BatchNorm canonizer: ", norm_path,
                 " does not take its input from ", layer_path, " in the recorded forward pass");
        const auto* f = dynamic_cast<const layers::LinearLike*>(lnode);
        const auto* a = dynamic_cast<const layers::ChannelAffine*>(nnode);
        GB_CHECK(f && a, "BatchNorm canonizer: cannot merge ", norm_path, " into ", layer_path);
        lnode->check_saved();
        nnode->check_saved();
        layers::MergedParams merged = layers::merge_channel_affine(*f, *a);
        merged.output = ni->second.second.detach();
        merged.output_version = merged.output.version();
        m->params[lnode] = std::move(merged);
        m->norms.insert(nnode);
    }
    merges_ = std::move(m);
    return *merges_;
}

std::string Trace::canonizer_note(Canonizer c) const {
    int64_t norms = 0;
    for (const auto& [path, layer] : model_.named_layers()) norms += layer->type() == "BatchNorm2d";
    const std::string plural = norms == 1 ? "" : "s";
    if (c == Canonizer::None)
        return norms == 0 ? "canonizer none"
                          : "canonizer none: " + std::to_string(norms) + " BatchNorm2d layer" + plural +
                                " not merged; relevance passes through them unchanged";
    if (norms == 0) return "canonizer batchnorm: the model has no BatchNorm";
    const size_t n = batchnorm_merges().norms.size();
    std::string note = "canonizer batchnorm: " + std::to_string(n) + " BatchNorm2d merged into the Conv2d/Linear before " +
                       (n == 1 ? "it" : "them");
    const auto left = unmerged_batchnorms(model_);
    if (!left.empty()) {
        std::string paths;
        for (const auto& p : left) paths += (paths.empty() ? "" : ", ") + p;
        note += "; not merged (no Conv2d/Linear directly before): " + paths + " (relevance passes through unchanged)";
    }
    return note;
}

std::vector<Tensor> Trace::relevance(const Composite& composite, const Tensor& seed,
                                     const std::vector<std::string>& layers) const {
    const auto rules = composite.resolve(model_);
    static const Merges kNone;
    const Merges& merges = composite.canonizer() == Canonizer::BatchNorm ? batchnorm_merges() : kNone;
    NodeBackward apply = [&rules, &merges](autograd::Node& n, const Tensor& r) -> std::optional<std::vector<Tensor>> {
        auto* ln = dynamic_cast<layers::LayerNode*>(&n);
        if (!ln || !ln->layer()) return std::nullopt;
        if (merges.norms.count(&n)) return ln->relevance_with(r, layers::Rule::pass());
        auto it = rules.find(ln->layer());
        if (auto m = merges.params.find(&n); m != merges.params.end())
            if (auto* lin = dynamic_cast<layers::LinearLikeNode*>(ln))
                return lin->relevance_with(r, it == rules.end() ? layers::Rule::gradient() : it->second, m->second);
        if (it == rules.end()) return std::nullopt;
        return ln->relevance_with(r, it->second);
    };
    return run(seed, layers, true, apply);
}

}  // namespace gb::explain
