#include "train/metrics.h"

#include <cmath>
#include <sstream>

#include "core/error.h"

namespace gb::train {

std::vector<int32_t> predictions(const Tensor& logits) {
    GB_CHECK(logits.rank() == 2, "predictions: expected [N, classes] logits, got ", logits.shape().str());
    const int64_t N = logits.dim(0), K = logits.dim(1);
    const std::vector<float> v = logits.to_vector<float>();
    std::vector<int32_t> out(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) {
        int64_t best = 0;
        for (int64_t k = 1; k < K; ++k)
            if (v[static_cast<size_t>(n * K + k)] > v[static_cast<size_t>(n * K + best)]) best = k;
        out[static_cast<size_t>(n)] = static_cast<int32_t>(best);
    }
    return out;
}

ConfusionMatrix::ConfusionMatrix(int64_t classes) : k_(classes), m_(static_cast<size_t>(classes * classes), 0) {
    GB_CHECK(classes > 0, "confusion matrix: classes must be positive");
}

void ConfusionMatrix::add(int32_t predicted, int32_t label) {
    GB_CHECK(predicted >= 0 && predicted < k_ && label >= 0 && label < k_, "confusion matrix: class out of range (",
             predicted, ", ", label, ") for ", k_, " classes");
    ++m_[static_cast<size_t>(label * k_ + predicted)];
    ++total_;
}

void ConfusionMatrix::add(const std::vector<int32_t>& predicted, const Tensor& labels) {
    const std::vector<int32_t> l = labels.to_vector<int32_t>();
    GB_CHECK(l.size() == predicted.size(), "confusion matrix: ", predicted.size(), " predictions for ", l.size(),
             " labels");
    for (size_t i = 0; i < l.size(); ++i) add(predicted[i], l[i]);
}

int64_t ConfusionMatrix::count(int64_t label, int64_t predicted) const {
    return m_[static_cast<size_t>(label * k_ + predicted)];
}

double ConfusionMatrix::accuracy() const {
    int64_t right = 0;
    for (int64_t k = 0; k < k_; ++k) right += count(k, k);
    return total_ ? static_cast<double>(right) / static_cast<double>(total_) : 0.0;
}

std::vector<double> ConfusionMatrix::per_class_accuracy() const {
    std::vector<double> out(static_cast<size_t>(k_));
    for (int64_t k = 0; k < k_; ++k) {
        int64_t row = 0;
        for (int64_t j = 0; j < k_; ++j) row += count(k, j);
        out[static_cast<size_t>(k)] = row ? static_cast<double>(count(k, k)) / static_cast<double>(row) : std::nan("");
    }
    return out;
}

std::string ConfusionMatrix::markdown(const std::vector<std::string>& names) const {
    auto name = [&](int64_t k) { return k < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(k)] : std::to_string(k); };
    std::ostringstream s;
    s << "| true \\ predicted |";
    for (int64_t k = 0; k < k_; ++k) s << " " << name(k) << " |";
    s << "\n|---|";
    for (int64_t k = 0; k < k_; ++k) s << "---:|";
    s << "\n";
    for (int64_t i = 0; i < k_; ++i) {
        s << "| " << name(i) << " |";
        for (int64_t j = 0; j < k_; ++j) s << " " << count(i, j) << " |";
        s << "\n";
    }
    return s.str();
}

void ConfusionMatrix::sum_over(const dist::Comm& comm) {
    comm.allreduce_sum(m_.data(), static_cast<int64_t>(m_.size()));
    comm.allreduce_sum(&total_, 1);
}

}  // namespace gb::train
