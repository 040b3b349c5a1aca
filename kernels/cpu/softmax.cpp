// Softmax, log-softmax and cross-entropy over the last axis of [rows, cols]
// (PyTorch torch.softmax / log_softmax / nn.CrossEntropyLoss with
// reduction='none'). Each row is shifted by its maximum before exp, so
// log sum exp(x) = max + log sum exp(x - max) never overflows. Row sums
// accumulate in double. Rows are spread over threads.
#include <algorithm>
#include <cmath>

#include "core/parallel.h"
#include "kernels/common/softmax.h"
#include "kernels/cpu/cpu_backend.h"

namespace gb::kernels {

namespace {

template <typename Fn>
void for_rows(int64_t rows, int64_t cols, Fn&& fn) {
    parallel_for(0, rows, std::max<int64_t>(1, cpu::kElementGrain / std::max<int64_t>(cols, 1) / 8),
                 [&](int64_t r0, int64_t r1) {
                     for (int64_t r = r0; r < r1; ++r) fn(r);
                 });
}

float row_max(const float* x, int64_t n) {
    float m = -INFINITY;
    for (int64_t j = 0; j < n; ++j) m = std::max(m, x[j]);
    return m;
}

// e[j] = exp(x[j] - max); returns sum_j e[j]. `e` may be `x`.
double exp_shifted(const float* x, int64_t n, float max, float* e) {
    double s = 0;
    for (int64_t j = 0; j < n; ++j) {
        e[j] = std::exp(x[j] - max);
        s += e[j];
    }
    return s;
}

}  // namespace

void CpuBackend::softmax_forward(int64_t rows, int64_t cols, const float* x, float* y) {
    for_rows(rows, cols, [&](int64_t r) {
        const float* xr = x + r * cols;
        float* yr = y + r * cols;
        const float inv = static_cast<float>(1.0 / exp_shifted(xr, cols, row_max(xr, cols), yr));
        for (int64_t j = 0; j < cols; ++j) yr[j] *= inv;
    });
}

void CpuBackend::log_softmax_forward(int64_t rows, int64_t cols, const float* x, float* y) {
    for_rows(rows, cols, [&](int64_t r) {
        const float* xr = x + r * cols;
        float* yr = y + r * cols;
        const float m = row_max(xr, cols);
        double s = 0;
        for (int64_t j = 0; j < cols; ++j) s += std::exp(xr[j] - m);
        const float log_s = static_cast<float>(std::log(s));
        for (int64_t j = 0; j < cols; ++j) yr[j] = log_softmax_value(xr[j], m, log_s);
    });
}

void CpuBackend::softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx) {
    for_rows(rows, cols, [&](int64_t r) {
        const float* yr = y + r * cols;
        const float* gr = dy + r * cols;
        float* dr = dx + r * cols;
        double dot = 0;
        for (int64_t j = 0; j < cols; ++j) dot += static_cast<double>(gr[j]) * yr[j];
        const float d = static_cast<float>(dot);
        for (int64_t j = 0; j < cols; ++j) dr[j] = yr[j] * (gr[j] - d);
    });
}

void CpuBackend::log_softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx) {
    for_rows(rows, cols, [&](int64_t r) {
        const float* yr = y + r * cols;
        const float* gr = dy + r * cols;
        float* dr = dx + r * cols;
        double s = 0;
        for (int64_t j = 0; j < cols; ++j) s += gr[j];
        const float sf = static_cast<float>(s);
        for (int64_t j = 0; j < cols; ++j) dr[j] = gr[j] - std::exp(yr[j]) * sf;
    });
}

void CpuBackend::cross_entropy_forward(int64_t rows, int64_t cols, const float* logits, const int32_t* labels,
                                       float* loss, float* probs) {
    for_rows(rows, cols, [&](int64_t r) {
        const float* xr = logits + r * cols;
        float* pr = probs + r * cols;
        const float m = row_max(xr, cols);
        const double s = exp_shifted(xr, cols, m, pr);
        const float inv = static_cast<float>(1.0 / s);
        for (int64_t j = 0; j < cols; ++j) pr[j] *= inv;
        loss[r] = -log_softmax_value(xr[labels[r]], m, static_cast<float>(std::log(s)));
    });
}

void CpuBackend::cross_entropy_backward(int64_t rows, int64_t cols, const float* probs, const int32_t* labels,
                                        const float* dloss, float* dlogits) {
    for_rows(rows, cols, [&](int64_t r) {
        const float* pr = probs + r * cols;
        float* dr = dlogits + r * cols;
        const float g = dloss[r];
        const int64_t l = labels[r];
        for (int64_t j = 0; j < cols; ++j) dr[j] = cross_entropy_grad(pr[j], j == l, g);
    });
}

}  // namespace gb::kernels
