// LayerNode: the graph node a layer call records. It knows its layer (so an
// explanation can pick a rule per layer) and computes relevance under a Rule:
// Pass copies the output relevance, Gradient runs backward(), linear-like
// layers (Conv2d, Linear, AvgPool2d, AdaptiveAvgPool2d) run the generic rule
// path of rule.h through their LinearLike interface, and rectifiers (ReLU) the
// rectifier rules (RectifierNode).
#pragma once

#include <mutex>
#include <utility>
#include <vector>

#include "../autograd/node.h"
#include "rule.h"

namespace gb::layers {

class Layer;

class LayerNode : public autograd::Node {
public:
    Layer* layer() const { return layer_; }
    std::string label() const override;
    const void* profile_owner() const override { return layer_; }
    void set_layer(Layer* l) { layer_ = l; }
    // Relevance of the inputs (in input order; undefined where no input needs it).
    virtual std::vector<Tensor> relevance_with(const Tensor& relevance_out, const Rule& rule);

private:
    Layer* layer_ = nullptr;
};

// A layer node of an element-wise rectifier y = f(x) (ReLU). Besides Pass and Gradient
// it applies the rectifier rules of rule.h (GuidedBackprop, Deconvnet, DeepLiftRescale),
// composed of the backend's element-wise primitives and its own backward, so they run
// on every backend; any other rule is a gb::Error naming the node.
class RectifierNode : public LayerNode {
public:
    std::vector<Tensor> relevance_with(const Tensor& relevance_out, const Rule& rule) override;

protected:
    // x, kept only when the call was recorded under KeepForRules (else undefined), and y.
    virtual Tensor saved_input() const = 0;
    virtual Tensor saved_output() const = 0;
};

// While one is alive on this thread, layer calls keep what rules beyond their backward
// need (a rectifier keeps its input, for DeepLiftRescale). explain::Trace records under
// it; training does not, so a training step keeps no more than its backward needs.
class KeepForRules {
public:
    KeepForRules();
    ~KeepForRules();
    KeepForRules(const KeepForRules&) = delete;
    KeepForRules& operator=(const KeepForRules&) = delete;
    static bool active();

private:
    bool previous_;
};

// What the generic rule path needs from a linear-like layer node f(x; W, b).
class LinearLike {
public:
    virtual ~LinearLike() = default;
    // f with these parameters (w, b undefined: none / the layer has none), no graph recorded.
    virtual Tensor forward_with(const Tensor& x, const Tensor& w, const Tensor& b) const = 0;
    // f^T: the input gradient of f with weight w for output gradient s (shape of the saved input),
    // a new tensor that the rule path may overwrite.
    virtual Tensor input_grad_with(const Tensor& s, const Tensor& w) const = 0;
    // One term of a rule in one pass where the backend has one (a convolution on
    // the CPU): x * f^T_w(r / stabilise(f(x; w, b), eps)), bit for bit what
    // forward_with, lrp_divide, input_grad_with and a product give. Undefined when
    // there is no such pass.
    // z_known, when defined, is f(x; w, b) (no forward is run); else, when z_keep
    // is defined (the output's shape), the pass writes f(x; w, b) into it.
    virtual Tensor relevance_term(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& r, float eps,
                                  const Tensor& z_known, Tensor z_keep) const {
        (void)x, (void)w, (void)b, (void)r, (void)eps, (void)z_known, (void)z_keep;
        return Tensor();
    }
    virtual const Tensor& saved_input() const = 0;
    virtual Tensor saved_weight() const { return Tensor(); }
    virtual Tensor saved_bias() const { return Tensor(); }
    // f(saved input; saved weight, saved bias) as the recorded forward computed
    // it, when the node kept it and nothing has written to it since (its storage
    // version is unchanged); else undefined. For a layer's own parameters it is
    // bit for bit what forward_with gives; for a canonizer's merged view it is the
    // merged pair's recorded output (equal up to rounding). A plain term (LRP-0,
    // epsilon) then divides by it, and Gamma derives its denominators from it,
    // without a forward.
    virtual Tensor saved_output() const { return Tensor(); }
    // f(saved input; w, b) for a rule's modified parameters (z+ = W+ x + b+, Gamma's
    // W+ pass), as an earlier relevance pass of the same recorded call computed it:
    // while the saved input's version is unchanged and w, b are the same tensors at
    // the same versions; else undefined. Never written by the caller. A node keeps
    // the last few (remember_forward), so a second explanation from one trace runs
    // no forward for them; they live as long as the node (the trace).
    virtual Tensor remembered_forward(const Tensor& w, const Tensor& b) const {
        (void)w, (void)b;
        return Tensor();
    }
    virtual void remember_forward(const Tensor& w, const Tensor& b, const Tensor& z) const {
        (void)w, (void)b, (void)z;
    }
};

// R_in of a linear-like node under a rule that has a term form (Rule::expand()).
Tensor linear_like_relevance(const LinearLike& f, const Tensor& relevance_out, const Rule& rule);

// Forwards of linear-like layers that linear_like_relevance has run (all threads,
// since the process started): tests and benchmarks check with it that a second
// explanation from one trace runs none where the forwards are remembered.
int64_t rule_forwards_run();

// A node whose recorded call maps every channel (dimension 1) affinely,
// y = scale[c] x + shift[c]: BatchNorm in eval mode.
class ChannelAffine {
public:
    virtual ~ChannelAffine() = default;
    // {scale [C], shift [C]}; gb::Error when the call was not affine per channel (training mode).
    virtual std::pair<Tensor, Tensor> channel_affine() const = 0;
    // Tensors sharing the layer's storages whose versions determine the map (BatchNorm:
    // weight, bias, running mean and variance), so a merge can be cached across traces;
    // empty: not cacheable.
    virtual std::vector<Tensor> affine_sources() const { return {}; }
};

// The parameters of "f, then a per-channel affine map" as one linear-like layer
// (the BatchNorm canonizer; computed in double): W'[k] = scale[k] W[k],
// b'[k] = scale[k] b[k] + shift[k] (b = 0 when f has no bias). Cached per storage and
// version of f's weight and bias and of the map's sources, like modified parameters,
// so traces of an unchanged model share the merged tensors (and, through them, the
// rules' cached W+ ...); never written by the caller.
// `output`, when set, is the pair's recorded output (the affine map's), which
// the view offers as its saved_output while its storage version is `output_version`.
struct MergedParams {
    Tensor weight, bias;
    Tensor output;
    uint64_t output_version = 0;
};
MergedParams merge_channel_affine(const LinearLike& f, const ChannelAffine& a);

// A layer node that is linear-like: Pass and Gradient as any layer node, every
// other rule through the generic path; the relevance goes to input 0.
class LinearLikeNode : public LayerNode, public LinearLike {
public:
    std::vector<Tensor> relevance_with(const Tensor& relevance_out, const Rule& rule) override;
    // The same with `params` in place of the saved weight and bias (a canonizer's view
    // of the layer; the layer itself is not touched). Gradient uses the merged weight.
    std::vector<Tensor> relevance_with(const Tensor& relevance_out, const Rule& rule, const MergedParams& params);
    Tensor remembered_forward(const Tensor& w, const Tensor& b) const override;
    void remember_forward(const Tensor& w, const Tensor& b, const Tensor& z) const override;

private:
    struct Remembered {
        Tensor w, b, z;
        uint64_t w_version = 0, b_version = 0, x_version = 0;
    };
    static constexpr size_t kRememberedForwards = 4;
    mutable std::mutex remembered_mutex_;
    mutable std::vector<Remembered> remembered_;  // oldest first
};

}  // namespace gb::layers
