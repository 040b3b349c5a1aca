// Soft decision tree (Frosst & Hinton 2017, "Distilling a Neural Network Into a Soft
// Decision Tree", arXiv:1711.09784): a complete binary tree of depth D whose 2^D - 1
// inner nodes are learned filters over the flattened (normalised) input,
//   p_i(x) = sigmoid(beta (w_i . x + b_i))      (the probability of the right branch),
// and whose 2^D leaves hold class distributions Q^l = softmax(phi^l) (learned logits).
// A leaf's path probability P^l(x) is the product of the branch probabilities on its
// path. Prediction: the distribution of the leaf with the greatest path probability.
//
// Every computation is an autograd function (matmul, log_softmax, softmax, sums), so the
// gradients come from the engine: log branch probabilities are log_softmax over (0, beta z),
// log path probabilities are sums of them along the paths (one matmul with a 0/1 matrix).
// Nodes are numbered breadth first: the root is 0, node j's children are 2j+1 (left) and
// 2j+2 (right), the leaves are nodes 2^D - 1 ... 2^(D+1) - 2 (leaf l is node 2^D - 1 + l).
// The saved state is `inner.weight` [2^D - 1, C*H*W], `inner.bias` [2^D - 1] and
// `leaf_logits` [2^D, classes], with the configuration as metadata (format "glassbox-soft-tree").
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../core/rng.h"
#include "../io/safetensors.h"
#include "../layers/linear.h"

namespace gb::models {

struct SoftTreeConfig {
    int64_t depth = 8;                           // 1 ... kMaxDepth
    int64_t channels = 1, height = 28, width = 28;  // the input image; the tree sees it flattened
    int64_t classes = 10;
    float beta = 1.f;  // inverse temperature of the inner nodes' sigmoids (> 0)

    static constexpr int64_t kMaxDepth = 12;
    int64_t inputs() const { return channels * height * width; }
    int64_t inner_nodes() const { return (int64_t{1} << depth) - 1; }
    int64_t leaves() const { return int64_t{1} << depth; }
    // gb::Error naming the field that is out of range.
    void validate() const;
    std::map<std::string, std::string> to_metadata() const;
    static SoftTreeConfig from_metadata(const std::map<std::string, std::string>& meta, const std::string& source);
};

// The training objective's parts for one batch (scalars [] on the batch's device).
struct SoftTreeLoss {
    Tensor total;    // data + penalty: what is minimised
    Tensor data;     // mean over the batch of sum_l P^l(x) * (-sum_k T_k log Q^l_k)
    Tensor penalty;  // lambda * sum_i 2^-depth(i) * -(0.5 log alpha_i + 0.5 log(1 - alpha_i))
};

// Routing of a batch by the most probable leaf (no gradient; host values).
struct SoftTreePrediction {
    std::vector<int32_t> leaf;          // [N] the leaf with the greatest path probability (first maximum)
    std::vector<float> leaf_probability;  // [N] its path probability
    std::vector<int32_t> label;         // [N] arg-max class of that leaf's distribution
    Tensor mixture;                     // [N, classes] sum_l P^l(x) Q^l, on the host
    Tensor right;                       // [N, inner] p_i(x), on the host
};

class SoftTree : public layers::Layer {
public:
    explicit SoftTree(const SoftTreeConfig& config, Generator& gen = default_generator());
    std::string type() const override { return "SoftTree"; }
    std::string describe() const override;
    const SoftTreeConfig& config() const { return cfg_; }

    // The filters: weight [inner nodes, C*H*W] and bias [inner nodes].
    layers::Linear& inner() { return *inner_; }
    const layers::Linear& inner() const { return *inner_; }
    Tensor leaf_logits() const { return leaf_logits_; }

    // Log path probabilities of the leaves [N, leaves] for images [N, C, H, W] or rows [N, C*H*W]
    // (already normalised as the tree was trained). Layer's call: forward(x) is this.
    Tensor leaf_log_probabilities(const Tensor& x);
    // The objective on a batch with targets [N, classes] (rows of a distribution: soft targets or one-hot
    // labels) and penalty strength lambda >= 0 (alpha_i is the path-weighted mean of p_i over this batch).
    SoftTreeLoss loss(const Tensor& x, const Tensor& targets, float lambda);
    // The leaves' class distributions Q [leaves, classes] (host).
    Tensor leaf_distributions() const;
    SoftTreePrediction predict(const Tensor& x);

    // The inner nodes on the path to `leaf` (root first) and the branch taken at each (0 left, 1 right).
    static std::vector<std::pair<int64_t, int>> path_to_leaf(int64_t depth, int64_t leaf);
    static int64_t node_depth(int64_t node);  // 0 for the root

protected:
    Tensor forward(const Tensor& x) override;

private:
    struct Constants {
        Device device = Device::cpu();
        Tensor pair;          // [1, 2] = (0, 1): beta z -> (0, beta z), the logits of (left, right)
        Tensor ancestors_t;   // [2I, 2I]: row j-1, column e = 1 when branch e lies on the path to node j
        Tensor leaf_paths;    // [2I, L]: row e, column l = 1 when branch e lies on the path to leaf l
        Tensor depth_weight;  // [I]: 2^-depth(i)
    };
    const Constants& constants(Device device);
    // log q [N, 2I]: column 2i + d is log of the probability of branch d (0 left, 1 right) at node i.
    Tensor branch_log_probabilities(const Tensor& x);

    SoftTreeConfig cfg_;
    std::shared_ptr<layers::Linear> inner_;
    Tensor leaf_logits_;
    Constants consts_;
};

// Checkpoint of a tree: its state and configuration, plus `meta` (input normalisation, how it was trained).
void save_soft_tree(const std::string& path, const SoftTree& tree, const std::map<std::string, std::string>& meta = {});
// Whether a file's metadata marks it as a soft tree (format "glassbox-soft-tree").
bool is_soft_tree(const std::map<std::string, std::string>& meta);
std::shared_ptr<SoftTree> load_soft_tree(const io::SafeTensors& file);
std::shared_ptr<SoftTree> load_soft_tree(const std::string& path);

}  // namespace gb::models
