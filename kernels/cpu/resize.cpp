// Bilinear resize of [planes, H, W] -> [planes, OH, OW] (PyTorch
// F.interpolate(mode='bilinear'), aten/src/ATen/native/cpu/UpSampleKernel.cpp):
// y = wh0 * (ww0 * x[h0,w0] + ww1 * x[h0,w1]) + wh1 * (ww0 * x[h1,w0] + ww1 * x[h1,w1])
// with taps and weights from kernels/common/resize.h. The backward scatters dy
// with the same weights; it splits planes over threads so no two threads add
// into the same dx element.
#include <algorithm>
#include <vector>

#include "core/parallel.h"
#include "kernels/common/resize.h"
#include "kernels/cpu/cpu_backend.h"

namespace gb::kernels {

namespace {

// Column taps of every output column, computed once per call on the calling
// thread into a grow-only buffer and read by all workers.
const LinearTaps* column_taps(int64_t W, int64_t OW, bool align_corners) {
    thread_local std::vector<LinearTaps> taps;
    if (taps.size() < static_cast<size_t>(OW)) taps.resize(static_cast<size_t>(OW));
    for (int64_t j = 0; j < OW; ++j) taps[static_cast<size_t>(j)] = linear_taps(W, OW, align_corners, j);
    return taps.data();
}

}  // namespace

void CpuBackend::resize_bilinear_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                         bool align_corners, const float* x, float* y) {
    if (planes <= 0 || OH <= 0 || OW <= 0) return;
    const LinearTaps* tw = column_taps(W, OW, align_corners);
    parallel_for(0, planes * OH, std::max<int64_t>(1, cpu::kElementGrain / (4 * OW)), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const int64_t pl = r / OH, oh = r % OH;
            const LinearTaps th = linear_taps(H, OH, align_corners, oh);
            const float* row0 = x + (pl * H + th.i0) * W;
            const float* row1 = x + (pl * H + th.i1) * W;
            float* out = y + r * OW;
            for (int64_t j = 0; j < OW; ++j) {
                const LinearTaps& t = tw[j];
                out[j] = th.w0 * (t.w0 * row0[t.i0] + t.w1 * row0[t.i1]) +
                         th.w1 * (t.w0 * row1[t.i0] + t.w1 * row1[t.i1]);
            }
        }
    });
}

void CpuBackend::resize_bilinear_backward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                          bool align_corners, const float* dy, float* dx) {
    if (planes <= 0) return;
    const LinearTaps* tw = column_taps(W, OW, align_corners);
    parallel_for(0, planes, std::max<int64_t>(1, cpu::kElementGrain / (4 * OH * OW + H * W)),
                 [&](int64_t p0, int64_t p1) {
                     for (int64_t pl = p0; pl < p1; ++pl) {
                         float* dp = dx + pl * H * W;
                         std::fill(dp, dp + H * W, 0.f);
                         for (int64_t oh = 0; oh < OH; ++oh) {
                             const LinearTaps th = linear_taps(H, OH, align_corners, oh);
                             float* row0 = dp + th.i0 * W;
                             float* row1 = dp + th.i1 * W;
                             const float* g = dy + (pl * OH + oh) * OW;
                             for (int64_t j = 0; j < OW; ++j) {
                                 const LinearTaps& t = tw[j];
                                 row0[t.i0] += th.w0 * t.w0 * g[j];
                                 row0[t.i1] += th.w0 * t.w1 * g[j];
                                 row1[t.i0] += th.w1 * t.w0 * g[j];
                                 row1[t.i1] += th.w1 * t.w1 * g[j];
                             }
                         }
                     }
                 });
}

}  // namespace gb::kernels
