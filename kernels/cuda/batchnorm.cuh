// Batch normalisation over [N, C, HW] per channel (PyTorch nn.BatchNorm2d): a
// block per channel computes the statistics with block reductions (two passes:
// mean, then the biased variance), then normalises that channel. Element math
// from kernels/common/normalization.h; gamma / beta / running stats / dx /
// dgamma / dbeta may be nullptr as the backend contract allows.
#pragma once

#include "../common/normalization.h"
#include "block_reduce.cuh"
#include "cuda_backend.h"

GB_GPU_BEGIN

constexpr int kChannelThreads = 256;

// Element j of channel c, j in [0, N*HW).
__device__ inline int64_t channel_index(int64_t j, int64_t c, int64_t C, int64_t HW) {
    return ((j / HW) * C + c) * HW + j % HW;
}

struct BnTrainArgs {
    int64_t N, C, HW;
    const float *x, *gamma, *beta;
    float eps, momentum;
    float *running_mean, *running_var, *y, *save_mean, *save_invstd;
};

__global__ void batchnorm_train_kernel(BnTrainArgs a) {
    const int64_t M = a.N * a.HW;
    for (int64_t c = blockIdx.x; c < a.C; c += gridDim.x) {
        float s = 0.f;
        for (int64_t j = threadIdx.x; j < M; j += blockDim.x) s += a.x[channel_index(j, c, a.C, a.HW)];
        const float mean = M > 0 ? block_sum(s) / static_cast<float>(M) : 0.f;
        float ss = 0.f;
        for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
            const float d = a.x[channel_index(j, c, a.C, a.HW)] - mean;
            ss += d * d;
        }
        const float var = M > 0 ? block_sum(ss) / static_cast<float>(M) : 0.f;
        const float invstd = bn_invstd(var, a.eps);
        if (threadIdx.x == 0) {
            a.save_mean[c] = mean;
            a.save_invstd[c] = invstd;
            if (a.running_mean) a.running_mean[c] = bn_running_update(a.running_mean[c], mean, a.momentum);
            if (a.running_var) a.running_var[c] = bn_running_update(a.running_var[c], bn_unbiased(var, M), a.momentum);
        }
        const float k = (a.gamma ? a.gamma[c] : 1.f) * invstd, b = a.beta ? a.beta[c] : 0.f;
        for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
            const int64_t i = channel_index(j, c, a.C, a.HW);
            a.y[i] = (a.x[i] - mean) * k + b;
        }
    }
}

__global__ void batchnorm_eval_kernel(int64_t total, int64_t C, int64_t HW, const float* x, const float* gamma,
                                      const float* beta, const float* running_mean, const float* running_var,
                                      float eps, float* y) {
    const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
    for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
        const int64_t c = (t / HW) % C;
        const float k = (gamma ? gamma[c] : 1.f) * bn_invstd(running_var[c], eps), b = beta ? beta[c] : 0.f;
        y[t] = (x[t] - running_mean[c]) * k + b;
    }
}

struct BnBackwardArgs {
    int64_t N, C, HW;
    const float *x, *dy, *gamma, *mean, *invstd;
    bool training;
    float *dx, *dgamma, *dbeta;
};

__global__ void batchnorm_backward_kernel(BnBackwardArgs a) {
    const int64_t M = a.N * a.HW;
    for (int64_t c = blockIdx.x; c < a.C; c += gridDim.x) {
        const float mu = a.mean[c], is = a.invstd[c];
        float s_dy = 0.f, s_dy_xhat = 0.f;
        for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
            const int64_t i = channel_index(j, c, a.C, a.HW);
            s_dy += a.dy[i];
            s_dy_xhat += a.dy[i] * ((a.x[i] - mu) * is);
        }
        s_dy = block_sum(s_dy);
        s_dy_xhat = block_sum(s_dy_xhat);
        if (threadIdx.x == 0) {
            if (a.dgamma) a.dgamma[c] = s_dy_xhat;
            if (a.dbeta) a.dbeta[c] = s_dy;
        }
        if (!a.dx) continue;
        const float k = (a.gamma ? a.gamma[c] : 1.f) * is;
        const bool through_stats = a.training && M > 0;
        const float mean_dy = through_stats ? s_dy / static_cast<float>(M) : 0.f;
        const float mean_dy_xhat = through_stats ? s_dy_xhat / static_cast<float>(M) : 0.f;
        for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
            const int64_t i = channel_index(j, c, a.C, a.HW);
            a.dx[i] = through_stats ? bn_backward_train(a.dy[i], (a.x[i] - mu) * is, k, mean_dy, mean_dy_xhat)
                                    : a.dy[i] * k;
        }
    }
}

void CudaBackend::batchnorm_forward_train(int64_t N, int64_t C, int64_t HW, const float* x, const float* gamma,
                                          const float* beta, float eps, float momentum, float* running_mean,
                                          float* running_var, float* y, float* save_mean, float* save_invstd) {
    if (C <= 0) return;
    select_device();
    launch(batchnorm_train_kernel, dim3(blocks_for(C, 1)), dim3(kChannelThreads), 0,
           BnTrainArgs{N, C, HW, x, gamma, beta, eps, momentum, running_mean, running_var, y, save_mean, save_invstd});
}

void CudaBackend::batchnorm_forward_eval(int64_t N, int64_t C, int64_t HW, const float* x, const float* gamma,
                                         const float* beta, const float* running_mean, const float* running_var,
                                         float eps, float* y) {
    const int64_t total = N * C * HW;
    if (total <= 0) return;
    select_device();
    launch(batchnorm_eval_kernel, dim3(blocks_for(total)), dim3(kThreads), 0, total, C, HW, x, gamma, beta,
           running_mean, running_var, eps, y);
}

void CudaBackend::batchnorm_backward(int64_t N, int64_t C, int64_t HW, const float* x, const float* dy,
                                     const float* gamma, const float* mean, const float* invstd, bool training,
                                     float* dx, float* dgamma, float* dbeta) {
    if (C <= 0) return;
    select_device();
    launch(batchnorm_backward_kernel, dim3(blocks_for(C, 1)), dim3(kChannelThreads), 0,
           BnBackwardArgs{N, C, HW, x, dy, gamma, mean, invstd, training, dx, dgamma, dbeta});
}

GB_GPU_END
