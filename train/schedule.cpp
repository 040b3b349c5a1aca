#include "train/schedule.h"

#include <cmath>

#include "core/error.h"

namespace gb::train {

void Schedule::validate() const {
    GB_CHECK(kind == "constant" || kind == "step" || kind == "cosine", "unknown learning-rate schedule '", kind,
             "' (expected constant, step or cosine)");
    GB_CHECK(base_lr > 0.f, "learning rate must be positive, got ", base_lr);
    GB_CHECK(step_size > 0 && gamma > 0.f, "step schedule needs step_size > 0 and gamma > 0");
    GB_CHECK(min_lr >= 0.f && min_lr <= base_lr, "cosine schedule: min_lr must be in [0, lr]");
    GB_CHECK(warmup_epochs >= 0 && total_epochs > 0, "schedule: warm-up must be >= 0 and epochs > 0");
}

float Schedule::lr_at(double epoch) const {
    if (warmup_epochs > 0 && epoch < warmup_epochs)
        return base_lr * static_cast<float>((epoch + 1e-3) / (warmup_epochs + 1e-3));
    const double e = epoch - warmup_epochs;
    if (kind == "step") return base_lr * std::pow(gamma, std::floor(e / static_cast<double>(step_size)));
    if (kind == "cosine") {
        const double T = std::max(1e-9, static_cast<double>(total_epochs) - warmup_epochs);
        const double t = std::min(e, T);
        return min_lr + (base_lr - min_lr) * static_cast<float>(0.5 * (1.0 + std::cos(M_PI * t / T)));
    }
    return base_lr;
}

}  // namespace gb::train
