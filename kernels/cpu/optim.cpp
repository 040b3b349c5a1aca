// Optimizer steps in place on a flat parameter, its gradient and its state:
// torch.optim.SGD and torch.optim.Adam / AdamW, per element via
// kernels/common/optim.h. With momentum == 0, SGD never touches momentum_buf.
#include "core/parallel.h"
#include "kernels/common/optim.h"
#include "kernels/cpu/cpu_backend.h"

namespace gb::kernels {

void CpuBackend::sgd_step(int64_t n, const SgdParams& p, bool first, float* param, const float* grad,
                          float* momentum_buf) {
    parallel_for(0, n, cpu::kElementGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
            sgd_update(param[i], grad[i], p.momentum != 0.f ? momentum_buf + i : nullptr, p.lr, p.momentum,
                       p.dampening, p.weight_decay, p.nesterov, first);
    });
}

void CpuBackend::adam_step(int64_t n, const AdamParams& p, int64_t step, float* param, const float* grad, float* m,
                           float* v) {
    const AdamScalars s = adam_scalars(p.lr, p.beta1, p.beta2, step);
    parallel_for(0, n, cpu::kElementGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
            adam_update(param[i], grad[i], m[i], v[i], p.lr, p.beta1, p.beta2, p.eps, p.weight_decay, p.decoupled, s);
    });
}

}  // namespace gb::kernels
