// CART (Breiman, Friedman, Olshen & Stone 1984, "Classification and Regression Trees"): an
// axis-aligned binary classification tree grown greedily, depth first by level. A node is split
// on the (feature, threshold) that minimises the size-weighted Gini impurity of its children,
// n_L G(L) + n_R G(R) with G = 1 - sum_k (c_k / n)^2, i.e. maximises sum_k c_Lk^2 / n_L +
// sum_k c_Rk^2 / n_R; thresholds lie halfway between consecutive distinct values (scikit-learn's
// DecisionTreeClassifier with criterion "gini" and max_depth, without its random feature order:
// ties go to the lowest feature, then the lowest threshold). A node stops being split when it is
// pure, holds fewer than two samples, has no two distinct values in any feature, or is at
// max_depth. Every feature is presorted once; each level is one pass over each feature's order.
// The baseline of `glassbox distill`.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "../io/safetensors.h"

namespace gb::models {

struct CartTree {
    int64_t features = 0, classes = 0;
    // Per node, root 0, children after their parent: the feature tested (-1 at a leaf), the threshold
    // (x[feature] <= threshold goes left), the children (-1 at a leaf), the node's depth, and the class
    // frequencies of the training samples that reached it ([nodes, classes], rows sum to 1).
    std::vector<int32_t> feature, left, right, depth;
    std::vector<float> threshold, distribution;

    int64_t nodes() const { return static_cast<int64_t>(feature.size()); }
    int64_t leaves() const;
    int64_t max_depth() const;
    // The leaf a row of `features` values reaches, and the arg-max class of its distribution (first maximum).
    int32_t leaf_of(const float* row) const;
    int32_t predict(const float* row) const;
    std::vector<int32_t> predict(const float* rows, int64_t n) const;
};

struct CartOptions {
    int64_t max_depth = 8;  // >= 1
    // Called after each level with (levels done, max_depth, nodes so far).
    std::function<void(int64_t, int64_t, int64_t)> on_level;
};

// Grows a tree on rows x [n, features] (row-major) with labels in [0, classes).
CartTree fit_cart(const float* x, int64_t n, int64_t features, const int32_t* labels, int64_t classes,
                  const CartOptions& options);

// A tree in a safetensors file (format "glassbox-cart-tree": the node arrays as tensors, `meta` added).
void save_cart(const std::string& path, const CartTree& tree, const std::map<std::string, std::string>& meta = {});
bool is_cart(const std::map<std::string, std::string>& meta);
// Checks the arrays (sizes, children in range and after their parent, features in range).
CartTree load_cart(const io::SafeTensors& file);

}  // namespace gb::models
