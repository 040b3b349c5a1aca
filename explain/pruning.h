// Filter-pruning criteria for the convolutions of a VGG, and the choice of the
// filters to remove (the surgery itself is models/prune.h).
//   - lrp (Yeom et al. 2021, "Pruning by explaining", Pattern Recognition 115):
//     R_f = sum over reference samples x_b and positions p of the relevance at
//     filter f's output, R_f(x_b)[p], under LRP with the epsilon-plus composite
//     (z+ = alpha1-beta0 on convolutions, epsilon on dense layers; BatchNorm merged
//     into the convolution by the canonizer), explained for the sample's true
//     class, the seed being that class's logit (the authors' code). Relevance at
//     the block output (after BatchNorm and ReLU) is the relevance at the
//     convolution's output: both pass it through.
//   - l1 (Li et al. 2017, "Pruning filters for efficient ConvNets"): sum |W| of the filter.
//   - taylor (Molchanov et al. 2017, "Pruning convolutional neural networks for
//     resource efficient inference"): | mean over samples of sum over positions of
//     a * dC/da |, a the block output (what pruning sets to zero), C the sample's
//     cross-entropy loss.
// Ranking (as the authors' code, github.com/seulkiyeom/LRP_pruning): each layer's
// scores are normalised (lrp and l1 by the sum of |score| of the layer, taylor by
// its L2 norm, Molchanov's 2.3) and all filters of all layers are ranked together;
// the lowest go first, one filter per layer always stays.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/tensor.h"
#include "../io/dataset.h"
#include "../models/vgg.h"

namespace gb::explain {

enum class PruneCriterion { Lrp, L1, Taylor };
// "lrp", "l1", "taylor"; gb::Error listing them otherwise.
PruneCriterion parse_prune_criterion(const std::string& name);
std::string prune_criterion_name(PruneCriterion c);
std::vector<std::string> prune_criterion_names();

struct FilterScores {
    std::string layer;           // the Conv2d's path, "features.0"
    std::vector<double> scores;  // raw criterion per filter (before normalisation)
};

// Scores of every Conv2d of `model` (forward order). `reference` [N, C, H, W] is in the model's
// input space (normalised) and `labels` [N] its classes; l1 reads neither (pass an undefined
// tensor and no labels). Runs on the model's device, in batches of `batch` samples.
std::vector<FilterScores> filter_scores(models::Vgg& model, PruneCriterion criterion, const Tensor& reference,
                                        const std::vector<int32_t>& labels, int64_t batch = 64);

// Each layer's scores normalised as the criterion's source does (see above).
std::vector<std::vector<double>> normalized_scores(const std::vector<FilterScores>& scores, PruneCriterion criterion);

// The filters to keep per layer (ascending) when round(rate * all filters) go by the global ranking of the
// normalised scores (ties: earlier layer, then lower index, go first); gb::Error when rate is outside (0, 1)
// or more filters would go than can (every layer keeps one).
std::vector<std::vector<int64_t>> filters_to_keep(const std::vector<FilterScores>& scores, PruneCriterion criterion,
                                                  double rate);

// The first `per_class` samples of each class of `data`, in dataset order (gb::Error when a class has fewer).
std::vector<int64_t> reference_indices(const io::Dataset& data, int64_t per_class);

}  // namespace gb::explain
