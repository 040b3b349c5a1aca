// What to explain, per sample: a class index, the predicted class, or a
// contrast "class A vs class B". Turned into the seed at the model output:
// one-hot(target) (Zennit's and Captum's convention), e_A - e_B for a contrast,
// optionally multiplied by the target logit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/tensor.h"

namespace gb::explain {

struct Target {
    enum class Kind { Class, Predicted, Contrast };
    Kind kind = Kind::Predicted;
    int32_t cls = 0;
    int32_t other = 0;  // Contrast: the class subtracted

    static Target predicted() { return Target{}; }
    static Target of(int32_t c) { return Target{Kind::Class, c, 0}; }
    static Target contrast(int32_t a, int32_t b) { return Target{Kind::Contrast, a, b}; }
    // "pred", "3", "3-5" (3 versus 5); with class names also "Sandal" and
    // "Sandal-Sneaker" (names may contain '-': every split at a '-' whose two sides
    // are both classes is a candidate, and more than one is an error). A name that
    // matches exactly wins over an index. gb::Error listing close names otherwise.
    static Target parse(const std::string& text, const std::vector<std::string>& class_names = {});
    std::string str() const;
    // With names: "Sandal (5)", "Sandal (5) versus Sneaker (7)", "pred".
    std::string describe(const std::vector<std::string>& class_names) const;
};

// The class each sample is explained for (the predicted one for Kind::Predicted).
std::vector<int32_t> resolve_classes(const std::vector<Target>& targets, const Tensor& logits);

// The output seed [N, classes]; `targets` holds one entry per sample or one for all.
Tensor output_seed(const std::vector<Target>& targets, const Tensor& logits, bool times_logit = false);

}  // namespace gb::explain
