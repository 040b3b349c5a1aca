// Learning-rate schedules as a function of (fractional) epoch, evaluated every
// iteration: optional linear warm-up from ~0 to the base rate, then
//   constant: base
//   step:     base * gamma^floor(e / step_size)          (PyTorch StepLR)
//   cosine:   min + (base - min) * (1 + cos(pi * e / T)) / 2  (Loshchilov & Hutter 2017, no restarts)
// where e counts epochs after the warm-up and T = total epochs - warm-up.
#pragma once

#include <cstdint>
#include <string>

namespace gb::train {

struct Schedule {
    std::string kind = "constant";  // constant | step | cosine
    float base_lr = 0.01f;
    int64_t step_size = 5;
    float gamma = 0.1f;
    float min_lr = 0.f;
    double warmup_epochs = 0;
    int64_t total_epochs = 1;

    // Raises gb::Error on an unknown kind or bad numbers.
    void validate() const;
    float lr_at(double epoch) const;
};

}  // namespace gb::train
