// Trace: one recorded forward pass, many explanations (see trace.h).
//
// The constructor runs the model once, in eval mode (Dropout is the identity and BatchNorm an affine map per channel,
// which the canonizer needs) and with grad mode on, on a clone of the input that requires a gradient, while every
// parameter's requires_grad is switched off. So the recorded graph starts at the input alone: its nodes keep what their
// backward needs, have edges only to the input and to each other, and no pass computes parameter gradients. A forward
// hook on every named layer keeps its (input, output) by path in io_, for CAMs, guided backprop, DeepLIFT and the
// captures; the forward runs under layers::KeepForRules, so rectifier nodes also keep their input (DeepLIFT's rule
// needs it; io_ holds it anyway). Hooks, parameter flags and the training mode are put back afterwards, also when the
// forward throws.
//
// Every explanation is then one Trace::run: an autograd::run from the logits with the caller's seed, with retain_graph
// (the graph serves any number of passes) and without accumulate_into_leaves (results come back as captures, nothing is
// added to input_.grad, so one pass cannot leak into the next). Gradient passes use the nodes' backward()
// (modified_gradient applies a composite's rules where it gives one: guided backprop, DeconvNet, DeepLIFT); relevance
// passes go through node_override, which applies the rule the composite resolved for each layer node
// (LayerNode::relevance_with); other nodes use their own relevance() (the gradient, or identity for ReLU, Dropout and
// BatchNorm).
//
// Canonizer::BatchNorm is a view, not a change to the model: batchnorm_merges() pairs each recorded convolution or
// fully connected node with the BatchNorm node that takes its output, and keeps for it the merged weight and bias
// (layers::merge_channel_affine, itself cached across traces by parameter version); the relevance pass then runs the
// layer's rule with those and passes relevance through the BatchNorm node. The merges are computed on first use and
// cached for the trace's lifetime, under a mutex so that concurrent passes on one trace compute them once. Invariants:
// a trace never writes the values of the model's parameters or buffers (only their requires_grad flags and the mode,
// during the constructor); tensors the forward saved are used only while their storage version is unchanged
// (Node::check_saved in every pass, MergedParams::output_version).
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
    // A new leaf on the caller's memory (no copy): the caller's tensor keeps its flags, and the graph's one
    // leaf belongs to the trace. A later write to that memory bumps the storage version the saved tensors check.
    input_ = input.detach().set_requires_grad();
    try {
        // Recorded even when the caller runs under NoGradGuard: the graph is the point of a trace.
        autograd::GradModeGuard recording(true);
        layers::KeepForRules keep;  // rectifiers keep their input for DeepLiftRescale (io_ holds it anyway)
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

// Leaf layers only (containers such as "features" are in io_ too, but are not what a user picks), sorted.
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
        // Without a grad_fn nothing could reach it: a zero map would be silently wrong, so it is an error.
        GB_CHECK(out.requires_grad(), "explain: layer '", l, "' is not on the path from the input to the output");
        capture.push_back(out);
    }
    autograd::RunOptions o;
    o.mode = relevance ? autograd::Mode::Relevance : autograd::Mode::Gradient;
    o.retain_graph = true;
    o.accumulate_into_leaves = false;
    o.node_override = replace;
    // Without the input among the captures nothing below the deepest named layer is wanted, so the pass stops
    // there (layer_gradients, the CAMs); with it the whole graph runs.
    o.prune_to_captures = !with_input;
    std::vector<Tensor> got = autograd::run({logits_}, {seed}, capture, o);
    // A capture nothing reached (the seed's classes do not depend on it) gets an exact zero, so callers always
    // receive a map of the captured tensor's shape.
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

std::vector<Tensor> Trace::modified_gradient(const Composite& composite, const Tensor& seed,
                                             const std::vector<std::string>& layers) const {
    return with_rules(composite, seed, layers, false);
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
        // The pairs come from the model's declared order (consecutive children of a Sequential); the recorded graph
        // says what the forward really did, and a merge is only right if the BatchNorm read the layer's output.
        GB_CHECK(!nnode->next().empty() && nnode->next()[0].fn.get() == lnode, "BatchNorm canonizer: ", norm_path,
                 " does not take its input from ", layer_path, " in the recorded forward pass");
        const auto* f = dynamic_cast<const layers::LinearLike*>(lnode);
        const auto* a = dynamic_cast<const layers::ChannelAffine*>(nnode);
        GB_CHECK(f && a, "BatchNorm canonizer: cannot merge ", norm_path, " into ", layer_path);
        // The merge reads the nodes' saved weight, bias and statistics outside the engine, which checks only
        // the nodes that compute: check them here.
        lnode->check_saved();
        nnode->check_saved();
        layers::MergedParams merged = layers::merge_channel_affine(*f, *a);
        // The BatchNorm's recorded output is z of the merged layer (up to rounding), so LRP-0, epsilon and gamma
        // need not run a forward; the version recorded now keeps it from being used once it is written to.
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
    for (const auto& [path, layer] : model_.named_layers()) norms += layer->has(layers::Capability::ChannelAffine);
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
    return with_rules(composite, seed, layers, true);
}

std::vector<Tensor> Trace::with_rules(const Composite& composite, const Tensor& seed,
                                      const std::vector<std::string>& layers, bool relevance) const {
    const auto rules = composite.resolve(model_);
    static const Merges kNone;
    const Merges& merges = composite.canonizer() == Canonizer::BatchNorm ? batchnorm_merges() : kNone;
    // Per node: not a layer call (add, reshape ...): its own relevance(). A merged BatchNorm:
    // Pass, its scale and shift live in the layer before it. A layer with merged parameters: its rule with them.
    // Anything else: the composite's rule, or, for a layer the composite leaves out, the node's own relevance().
    NodeBackward apply = [&rules, &merges](autograd::Node& n, const Tensor& r) -> std::optional<std::vector<Tensor>> {
        auto* ln = dynamic_cast<layers::LayerNode*>(&n);
        if (!ln || !ln->layer()) return std::nullopt;
        if (merges.norms.count(&n)) return ln->relevance_with(r, layers::Rule::pass());
        auto it = rules.find(ln->layer());
        // Without a rule a merged layer still takes the gradient with the merged weight: its own backward would
        // use the unmerged one, and the BatchNorm's scale (passed over above) would be lost.
        if (auto m = merges.params.find(&n); m != merges.params.end())
            if (auto* lin = dynamic_cast<layers::LinearLikeNode*>(ln))
                return lin->relevance_with(r, it == rules.end() ? layers::Rule::gradient() : it->second, m->second);
        if (it == rules.end()) return std::nullopt;
        return ln->relevance_with(r, it->second);
    };
    return run(seed, layers, relevance, apply);
}

}  // namespace gb::explain
