// Canonizers (Zennit's term): how the relevance pass sees the model, never a
// change to it. Canonizer::BatchNorm is Zennit's SequentialMergeBatchNorm done
// as a view: each BatchNorm2d (Capability::ChannelAffine) that directly follows a
// Conv2d or Linear (Convolution, FullyConnected) inside a Sequential is merged into
// that layer for LRP only — the layer's rule runs
// with W' = W g / sqrt(var + eps), b' = (b - mean) g / sqrt(var + eps) + beta,
// and the BatchNorm passes relevance — while gradients, CAMs and activations
// of the same Trace see the model as it is, and no parameter is ever written.
// (Zennit rewrites the model and keeps multiplying by 1/sqrt(1 + eps) in the
// merged BatchNorm's forward; the exact merge here differs from it by ~1e-5 of
// a map's maximum on an 11-layer model, see docs/explain.md.)
#pragma once

#include <string>
#include <vector>

#include "../layers/layer.h"

namespace gb::explain {

enum class Canonizer { None, BatchNorm };

// "batchnorm" / "none"; gb::Error listing both otherwise.
Canonizer parse_canonizer(const std::string& name);
std::string canonizer_name(Canonizer c);

// One BatchNorm merge: layer paths of the linear-like layer and the BatchNorm after it.
struct BatchNormMerge {
    std::string layer, norm;
};

// The merges Canonizer::BatchNorm makes on `model`, in forward order.
std::vector<BatchNormMerge> batchnorm_merges(layers::Layer& model);
// Paths of the BatchNorm layers it cannot merge (not directly after a Conv2d or Linear).
std::vector<std::string> unmerged_batchnorms(layers::Layer& model);

}  // namespace gb::explain
