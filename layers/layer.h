// Layer: the base of every module. A layer owns named parameters and buffers
// and named children (Sequential); calling it runs forward() and records one
// graph node. Hooks: on_forward_replace may replace the output after each call
// (interventions, do(a = v): explain/interventions.h), on_forward then sees
// (input, output); on_backward sees the gradient (or relevance) arriving at the
// layer's output and may replace it. All return a handle for remove_hook().
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../core/tensor.h"

namespace gb::layers {

// What a layer is, for code that treats kinds of layers alike (composites, the BatchNorm
// canonizer, the default CAM layer, the rectifier rules, channel importance): it asks
// these, never the type() string, so a new layer takes part by answering them.
enum class Capability : uint32_t {
    LinearLike = 1u << 0,      // affine in its input: LRP rules apply (LinearLike in layer_node.h)
    Convolution = 1u << 1,     // learned filters over [N, C, H, W] maps (Conv2d): presets' conv rules, the CAM layer
    FullyConnected = 1u << 2,  // learned dense map (Linear): presets' Epsilon, the output layer
    AveragePool = 1u << 3,     // parameter-free averaging (AvgPool2d, AdaptiveAvgPool2d): LRP's Norm rule
    ChannelAffine = 1u << 4,   // per-channel affine in eval mode (BatchNorm2d): merged by the BatchNorm canonizer
    Rectifier = 1u << 5,       // element-wise, zero below 0 (ReLU): guided backprop, DeconvNet, DeepLIFT rules
};
constexpr uint32_t bits(Capability c) { return static_cast<uint32_t>(c); }
constexpr uint32_t operator|(Capability a, Capability b) { return bits(a) | bits(b); }
constexpr uint32_t operator|(uint32_t a, Capability b) { return a | bits(b); }
// "convolutions", "fully connected layers" ... (composite descriptions).
std::string capability_name(Capability c);

class Layer {
public:
    using ForwardHook = std::function<void(Layer& layer, const Tensor& input, const Tensor& output)>;
    using BackwardHook = std::function<std::optional<Tensor>(Layer& layer, const Tensor& grad_output)>;
    // A returned tensor (the output's shape, dtype and device) becomes the layer's output for the caller, the
    // later replace hooks and every on_forward hook; build it with differentiable functions of `output`
    // (autograd/functions.h) for gradients and relevance to flow through it.
    using ForwardReplaceHook = std::function<std::optional<Tensor>(Layer& layer, const Tensor& input, const Tensor& output)>;

    Layer() = default;
    virtual ~Layer() = default;
    Layer(const Layer&) = delete;
    Layer& operator=(const Layer&) = delete;

    // "Conv2d", "ReLU", ...: for messages and summaries; behaviour asks capabilities().
    virtual std::string type() const = 0;
    // Bitwise or of the Capability values the layer has (none by default: a container, Dropout, MaxPool2d ...).
    virtual uint32_t capabilities() const { return 0; }
    bool has(Capability c) const { return (capabilities() & bits(c)) != 0; }
    bool has_any(uint32_t mask) const { return (capabilities() & mask) != 0; }
    // One-line description with the configuration, PyTorch style.
    virtual std::string describe() const { return type() + "()"; }

    // forward() plus hooks. Checks the input before running.
    Tensor operator()(const Tensor& input);

    // Parameters and buffers, recursively, with dotted paths ("features.0.weight").
    std::vector<std::pair<std::string, Tensor>> named_parameters(const std::string& prefix = "") const;
    std::vector<Tensor> parameters() const;
    std::vector<std::pair<std::string, Tensor>> named_buffers(const std::string& prefix = "") const;
    // Parameters followed by buffers: everything a checkpoint stores.
    std::vector<std::pair<std::string, Tensor>> state(const std::string& prefix = "") const;
    const std::vector<std::pair<std::string, std::shared_ptr<Layer>>>& children() const { return children_; }
    // Every layer below (depth first) with its dotted path; this layer is "".
    std::vector<std::pair<std::string, Layer*>> named_layers(const std::string& prefix = "");

    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }
    void zero_grad();
    // Moves parameters and buffers in place (handles held elsewhere follow).
    void to(Device device);

    int on_forward(ForwardHook hook);
    int on_backward(BackwardHook hook);
    int on_forward_replace(ForwardReplaceHook hook);
    bool remove_hook(int handle);
    bool has_hooks() const { return !forward_hooks_.empty() || !backward_hooks_.empty() || !replace_hooks_.empty(); }

    // Total number of parameter elements.
    int64_t num_parameters() const;
    // Multi-line tree of the model.
    std::string summary() const;

protected:
    virtual Tensor forward(const Tensor& input) = 0;
    Tensor add_parameter(const std::string& name, Tensor value);
    Tensor add_buffer(const std::string& name, Tensor value);
    void add_child(const std::string& name, std::shared_ptr<Layer> child);

private:
    void summary_into(std::string& out, const std::string& name, int depth) const;

    std::vector<std::pair<std::string, Tensor>> params_;
    std::vector<std::pair<std::string, Tensor>> buffers_;
    std::vector<std::pair<std::string, std::shared_ptr<Layer>>> children_;
    std::vector<std::pair<int, ForwardHook>> forward_hooks_;
    std::vector<std::pair<int, BackwardHook>> backward_hooks_;
    std::vector<std::pair<int, ForwardReplaceHook>> replace_hooks_;
    int next_hook_id_ = 0;
    bool training_ = true;
};

}  // namespace gb::layers
