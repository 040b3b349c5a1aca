// Causal interventions on units: Pearl's do-operator applied to a network's internal units (as in Chattopadhyay
// et al. 2019, "Neural network attributions: a causal perspective", and the ablation studies of Morcos et al.
// 2018, "On the importance of single directions for generalization").
//
// An Intervention installs do(a = v) on chosen channels or units of any layers of a model through the layers'
// forward replace hooks (layers/layer.h): while it lives, every forward of the model (predict, explain::Trace,
// training) computes a' = a * keep + v * (1 - keep) at those layers (keep: 0 on the intervened units, 1
// elsewhere), with differentiable functions, so gradients and LRP relevance run on the intervened model (an
// intervened unit passes no gradient and no relevance to what is below it: it no longer depends on the input).
// Values: zero; a constant; the unit's mean over a reference set; values resampled from the reference set
// (each sample of a forward takes all intervened units of one reference input, drawn uniformly with a seeded
// generator; interchange interventions); or values given per sample (e.g. the unit's own value: the identity).
// Reference outputs are those of the model without the intervention.
//
// intervention_study measures, over a set of images, the average causal effect of do(channel c = v) on every
// class's logit and probability, ranks the channels by the effect on the predicted class, compares that ranking
// with channel importance (mean |a|), gradient x activation and LRP relevance at the layer (Spearman, top-k
// overlap), and measures the accuracy when the top-k channels of each ranking are intervened on together.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../core/tensor.h"
#include "../layers/layer.h"

namespace gb::explain {

enum class DoValue { Zero, Constant, Mean, Resample, Given };

// "zero", "mean", "resample" or "constant:V" (V a finite number); gb::Error listing them otherwise.
DoValue parse_do_value(const std::string& text, float* constant);
std::string do_value_name(DoValue value, float constant = 0.f);

struct DoSpec {
    std::string layer;              // a path of model.named_layers() ("features.3")
    std::vector<int64_t> channels;  // of the layer's output (its dim 1), at every position
    std::vector<int64_t> units;     // flat indices into one sample's output; with channels: both; neither: every unit
    DoValue value = DoValue::Zero;
    float constant = 0.f;  // DoValue::Constant
    Tensor given;          // DoValue::Given: the layer output's shape [N, ...] for forwards of N samples
};

// Outputs of layers of a model on reference inputs (model without interventions): path -> [R, ...].
using LayerOutputs = std::map<std::string, Tensor>;
LayerOutputs record_outputs(layers::Layer& model, const Tensor& x, const std::vector<std::string>& layers, int64_t batch = 256);

class Intervention {
public:
    // Installs every spec on `model` until destruction (or remove()). `input`: one sample's shape [C, H, W]; a
    // probe forward on zeros learns each layer's output shape, so an unknown layer or a channel or unit out of
    // range is a gb::Error here. `reference`: record_outputs of the specs' layers on the reference set, needed
    // by Mean and Resample. Resample draws from a Generator seeded `seed`, N draws per forward, in order.
    Intervention(layers::Layer& model, const Shape& input, std::vector<DoSpec> specs, const LayerOutputs& reference = {},
                 uint64_t seed = 0);
    ~Intervention();
    Intervention(const Intervention&) = delete;
    Intervention& operator=(const Intervention&) = delete;
    void remove();
    // "features.3 channels 1,5 := zero" per spec, one line each.
    std::string describe() const;

private:
    struct State;
    std::vector<std::pair<layers::Layer*, int>> hooks_;
    std::vector<std::shared_ptr<State>> states_;
};

struct InterventionStudyOptions {
    std::string layer;
    std::vector<int64_t> channels;  // studied; empty: every channel of the layer
    DoValue value = DoValue::Zero;
    float constant = 0.f;
    uint64_t seed = 0;  // Resample's draws and the random ranking
    int64_t batch = 256;
    std::string composite = "epsilon-plus-flat";  // LRP preset for the relevance at the layer
    std::vector<int64_t> ks;  // ablation sizes; empty: 1, 2, 4, ... and the number of studied channels
};

struct RankAgreement {
    std::string criterion;                 // compared with the causal ranking
    double spearman = 0;                   // of the per-channel scores
    std::vector<double> top_k_overlap;     // |top-k(causal) & top-k(criterion)| / k per options.ks
};

struct InterventionStudy {
    std::string layer, value;
    int64_t layer_channels = 0, images = 0, classes = 0;
    std::vector<int64_t> channels;          // studied, in the order of every per-channel vector below
    // E_x[f_k(x) - f_k(x; do(a_c = v))] for logits and softmax probabilities: [channels, classes], float32
    Tensor effect_logits, effect_probabilities;
    // Per channel, on each image's predicted class y(x) (without intervention):
    std::vector<double> causal;               // E_x[f_y(x) - f_y(x; do)] (logit)
    std::vector<double> causal_probability;   // the same on p_y
    std::vector<double> mean_abs;             // E |a_c| over images and positions (channel importance)
    std::vector<double> grad_x_act;           // E_x sum_positions (d f_y / d a_c) a_c (first-order estimate of do(0))
    std::vector<double> lrp;                  // E_x sum_positions R_c (relevance of y at the layer's output)
    // Channels best first: "causal", "mean |a|", "gradient x activation", "LRP", "random".
    std::vector<std::pair<std::string, std::vector<int64_t>>> rankings;
    std::vector<RankAgreement> agreement;     // causal against the others
    std::vector<int64_t> ks;
    double accuracy = 0;                      // without intervention (labels given), else agreement with itself: 1
    std::map<std::string, std::vector<double>> ablation_accuracy;  // ranking -> accuracy with its top-k intervened, per k
    std::map<std::string, std::vector<double>> ablation_agreement; // ranking -> fraction of unchanged predictions, per k
};

// `x` [N, C, H, W] in the model's input space; `labels` [N] (true classes, or empty: accuracy columns then say
// how often the prediction is kept); `reference` [R, C, H, W] for Mean and Resample (else unused). progress(done,
// total) after every intervened pass. gb::Error for an unknown layer, a channel out of range, a missing reference.
InterventionStudy intervention_study(layers::Layer& model, const Tensor& x, const std::vector<int32_t>& labels,
                                     const Tensor& reference, const InterventionStudyOptions& options,
                                     const std::function<void(int64_t done, int64_t total)>& progress = {});

// Writes into `dir`: channels.csv (per channel: the four scores and its rank in every ranking),
// effect_logits.npy and effect_probabilities.npy ([channels, classes]), ablation.csv and ablation.svg (accuracy
// per k and ranking), report.html, run.json last. `info`: key/value lines for the report (model, checkpoint,
// data). Returns the report's path.
std::string write_intervention_study(const std::string& dir, const InterventionStudy& study,
                                     const std::vector<std::string>& class_names,
                                     const std::vector<std::pair<std::string, std::string>>& info);

}  // namespace gb::explain
