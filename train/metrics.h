// Classification metrics: arg-max predictions, accuracy, and a confusion
// matrix (rows = true class, columns = predicted class).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/distributed.h"
#include "../core/tensor.h"

namespace gb::train {

// Arg-max over the last axis of [N, classes] logits (first maximum wins).
std::vector<int32_t> predictions(const Tensor& logits);

class ConfusionMatrix {
public:
    explicit ConfusionMatrix(int64_t classes);
    void add(const std::vector<int32_t>& predicted, const Tensor& labels);
    void add(int32_t predicted, int32_t label);
    int64_t count(int64_t label, int64_t predicted) const;
    int64_t total() const { return total_; }
    int64_t classes() const { return k_; }
    double accuracy() const;
    // Accuracy per true class (NaN for a class that never occurs).
    std::vector<double> per_class_accuracy() const;
    // The counts summed over the ranks of `comm` (each counted its own shard of the data).
    void sum_over(const dist::Comm& comm);
    // Markdown table with class names (numbers when empty).
    std::string markdown(const std::vector<std::string>& names = {}) const;

private:
    int64_t k_, total_ = 0;
    std::vector<int64_t> m_;
};

}  // namespace gb::train
