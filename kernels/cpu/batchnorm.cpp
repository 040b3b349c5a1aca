// Batch normalisation over [N, C, HW] per channel (PyTorch nn.BatchNorm2d):
// y = (x - mean) * invstd * gamma + beta, invstd = 1 / sqrt(var + eps).
// Training normalises with the biased batch variance and moves the running
// statistics toward (mean, unbiased variance); statistics are two-pass double
// sums. Channels are spread over threads. gamma / beta may be nullptr (1 / 0),
// as may running_mean / running_var (not tracked) and dx / dgamma / dbeta (not
// wanted).
#include <algorithm>

#include "core/parallel.h"
#include "kernels/common/normalization.h"
#include "kernels/cpu/cpu_backend.h"

namespace gb::kernels {

namespace {

template <typename Fn>
void for_channels(int64_t N, int64_t C, int64_t HW, Fn&& fn) {
    const int64_t work = std::max<int64_t>(1, N * HW);
    parallel_for(0, C, std::max<int64_t>(1, cpu::kElementGrain / work), [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) fn(c);
    });
}

// y = (x - mean) * k + b over channel c of every sample.
void normalize_channel(int64_t N, int64_t C, int64_t HW, int64_t c, const float* x, float mean, float k, float b,
                       float* y) {
    for (int64_t n = 0; n < N; ++n) {
        const float* xs = x + (n * C + c) * HW;
        float* ys = y + (n * C + c) * HW;
        for (int64_t i = 0; i < HW; ++i) ys[i] = (xs[i] - mean) * k + b;
    }
}

}  // namespace

void CpuBackend::batchnorm_forward_train(int64_t N, int64_t C, int64_t HW, const float* x, const float* gamma,
                                         const float* beta, float eps, float momentum, float* running_mean,
                                         float* running_var, float* y, float* save_mean, float* save_invstd) {
    const int64_t M = N * HW;
    for_channels(N, C, HW, [&](int64_t c) {
        double s = 0;
        for (int64_t n = 0; n < N; ++n) {
            const float* xs = x + (n * C + c) * HW;
            for (int64_t i = 0; i < HW; ++i) s += xs[i];
        }
        const double mean = M > 0 ? s / static_cast<double>(M) : 0.0;
        double ss = 0;
        for (int64_t n = 0; n < N; ++n) {
            const float* xs = x + (n * C + c) * HW;
            for (int64_t i = 0; i < HW; ++i) {
                const double d = xs[i] - mean;
                ss += d * d;
            }
        }
        const float var = M > 0 ? static_cast<float>(ss / static_cast<double>(M)) : 0.f;
        const float meanf = static_cast<float>(mean);
        const float invstd = bn_invstd(var, eps);
        save_mean[c] = meanf;
        save_invstd[c] = invstd;
        if (running_mean) running_mean[c] = bn_running_update(running_mean[c], meanf, momentum);
        if (running_var) running_var[c] = bn_running_update(running_var[c], bn_unbiased(var, M), momentum);
        const float g = gamma ? gamma[c] : 1.f, b = beta ? beta[c] : 0.f;
        normalize_channel(N, C, HW, c, x, meanf, g * invstd, b, y);
    });
}

void CpuBackend::batchnorm_forward_eval(int64_t N, int64_t C, int64_t HW, const float* x, const float* gamma,
                                        const float* beta, const float* running_mean, const float* running_var,
                                        float eps, float* y) {
    for_channels(N, C, HW, [&](int64_t c) {
        const float g = gamma ? gamma[c] : 1.f, b = beta ? beta[c] : 0.f;
        normalize_channel(N, C, HW, c, x, running_mean[c], g * bn_invstd(running_var[c], eps), b, y);
    });
}

void CpuBackend::batchnorm_backward(int64_t N, int64_t C, int64_t HW, const float* x, const float* dy,
                                    const float* gamma, const float* mean, const float* invstd, bool training,
                                    float* dx, float* dgamma, float* dbeta) {
    const int64_t M = N * HW;
    for_channels(N, C, HW, [&](int64_t c) {
        const float mu = mean[c], is = invstd[c];
        double sum_dy = 0, sum_dy_xhat = 0;
        for (int64_t n = 0; n < N; ++n) {
            const float* xs = x + (n * C + c) * HW;
            const float* gs = dy + (n * C + c) * HW;
            for (int64_t i = 0; i < HW; ++i) {
                sum_dy += gs[i];
                sum_dy_xhat += static_cast<double>(gs[i]) * ((xs[i] - mu) * is);
            }
        }
        if (dgamma) dgamma[c] = static_cast<float>(sum_dy_xhat);
        if (dbeta) dbeta[c] = static_cast<float>(sum_dy);
        if (!dx) return;
        const float k = (gamma ? gamma[c] : 1.f) * is;
        if (training && M > 0) {
            const float mean_dy = static_cast<float>(sum_dy / static_cast<double>(M));
            const float mean_dy_xhat = static_cast<float>(sum_dy_xhat / static_cast<double>(M));
            for (int64_t n = 0; n < N; ++n) {
                const float* xs = x + (n * C + c) * HW;
                const float* gs = dy + (n * C + c) * HW;
                float* ds = dx + (n * C + c) * HW;
                for (int64_t i = 0; i < HW; ++i)
                    ds[i] = bn_backward_train(gs[i], (xs[i] - mu) * is, k, mean_dy, mean_dy_xhat);
            }
        } else {
            for (int64_t n = 0; n < N; ++n) {
                const float* gs = dy + (n * C + c) * HW;
                float* ds = dx + (n * C + c) * HW;
                for (int64_t i = 0; i < HW; ++i) ds[i] = gs[i] * k;
            }
        }
    });
}

}  // namespace gb::kernels
