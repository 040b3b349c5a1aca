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

Trace::Trace(layers::Layer& model, const Tensor& input, TraceOptions options) : model_(model) {
    GB_CHECK(input.defined() && input.dtype() == DType::Float32 && input.rank() == 4,
             "explain: the input must be a float32 batch [N, C, H, W], got ",
             input.defined() ? input.shape().str() : std::string("(undefined)"));
    if (options.fold_batchnorm) fold_ = std::make_unique<BatchNormFold>(model);
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

std::vector<Tensor> Trace::relevance(const Composite& composite, const Tensor& seed,
                                     const std::vector<std::string>& layers) const {
    const auto rules = composite.resolve(model_);
    NodeBackward apply = [&rules](autograd::Node& n, const Tensor& r) -> std::optional<std::vector<Tensor>> {
        auto* ln = dynamic_cast<layers::LayerNode*>(&n);
        if (!ln || !ln->layer()) return std::nullopt;
        auto it = rules.find(ln->layer());
        if (it == rules.end()) return std::nullopt;
        return ln->relevance_with(r, it->second);
    };
    return run(seed, layers, true, apply);
}

}  // namespace gb::explain
