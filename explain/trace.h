// Trace: one recorded forward pass of a batch, from which any number of
// explanations are computed without running the model again: gradients and
// relevance (under any composite) for any targets, captured at the input and
// at any layer's output. The model runs in eval mode with its parameters
// frozen (no parameter gradients are computed); every layer's input and
// output are kept for the methods that need them (CAMs, guided backprop,
// DeepLIFT). A trace never writes the model: LRP applies its composite's
// canonizer as a view (canonizer.h), so gradients and CAMs of the same trace
// see the model as it is, and any number of traces of one model may live side
// by side. A pass that finds a tensor the forward saved written to since fails.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "../autograd/node.h"
#include "canonizer.h"
#include "composite.h"
#include "target.h"
#include "../layers/layer.h"
#include "../layers/layer_node.h"

namespace gb::explain {

class Trace {
public:
    // Runs the forward pass. `input` is [N, C, H, W] (not modified).
    Trace(layers::Layer& model, const Tensor& input);
    ~Trace();
    Trace(const Trace&) = delete;
    Trace& operator=(const Trace&) = delete;

    const Tensor& input() const { return input_; }
    const Tensor& logits() const { return logits_; }
    layers::Layer& model() const { return model_; }
    // Input and output of the layer at `path` ("features.7"); gb::Error listing the paths otherwise.
    const Tensor& layer_input(const std::string& path) const;
    const Tensor& layer_output(const std::string& path) const;
    std::vector<std::string> layer_paths() const;
    // The path of a layer of the model ("" for the model itself).
    const std::string& path_of(const layers::Layer* layer) const;

    Tensor seed(const std::vector<Target>& targets, bool times_logit = false) const;
    // Gradient of sum(seed * logits) at the input (first) and at each named layer output.
    std::vector<Tensor> gradient(const Tensor& seed, const std::vector<std::string>& layers = {}) const;
    // Gradient at the named layer outputs only: the backward pass stops at the deepest of them.
    std::vector<Tensor> layer_gradients(const Tensor& seed, const std::vector<std::string>& layers) const;
    // Relevance under `composite` (its rules and its canonizer) from the output relevance
    // `seed`, at the input and the named layer outputs.
    std::vector<Tensor> relevance(const Composite& composite, const Tensor& seed,
                                  const std::vector<std::string>& layers = {}) const;
    // A gradient pass in which the layers `composite` gives a rule apply it (guided backprop,
    // DeconvNet and DeepLIFT give the rectifiers theirs), Zennit's way; every other node
    // takes its gradient.
    std::vector<Tensor> modified_gradient(const Composite& composite, const Tensor& seed,
                                          const std::vector<std::string>& layers = {}) const;

    // What canonizer `c` does to this trace's model, for reports, e.g. "canonizer batchnorm:
    // 8 BatchNorm2d merged into the Conv2d/Linear before them" or "canonizer none".
    std::string canonizer_note(Canonizer c) const;

    // Forward passes run by all Traces in this process (tests use it to prove reuse).
    static int64_t forward_passes();

private:
    using NodeBackward = std::function<std::optional<std::vector<Tensor>>(autograd::Node&, const Tensor&)>;
    std::vector<Tensor> with_rules(const Composite& composite, const Tensor& seed, const std::vector<std::string>& layers,
                                   bool relevance) const;
    std::vector<Tensor> run(const Tensor& seed, const std::vector<std::string>& layers, bool relevance,
                            const NodeBackward& replace, bool with_input = true) const;

    // Merged parameters per linear-like node, for Canonizer::BatchNorm (computed on first
    // use from the nodes' saved tensors), and the merged BatchNorm nodes.
    struct Merges {
        std::map<const autograd::Node*, layers::MergedParams> params;
        std::set<const autograd::Node*> norms;
    };
    const Merges& batchnorm_merges() const;

    layers::Layer& model_;
    mutable std::mutex merges_mutex_;
    mutable std::unique_ptr<Merges> merges_;
    Tensor input_, logits_;
    std::map<std::string, std::pair<Tensor, Tensor>> io_;  // path -> (input, output)
    std::map<const layers::Layer*, std::string> paths_;
};

// The layer path of the node's layer within a trace, or nullptr when the node is not a layer call.
const layers::Layer* node_layer(const autograd::Node& node);

}  // namespace gb::explain
