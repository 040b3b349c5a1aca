#include "io/resample.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/factory.h"
#include "kernels/common/resize.h"

namespace gb::io {

namespace {

// Normalised weights of every destination index along one axis, `count` per index from `first`.
struct AxisWeights {
    std::vector<int64_t> first, count;
    std::vector<float> w;  // out x max_count
    int64_t stride = 0;
};

AxisWeights axis_weights(int64_t in, int64_t out) {
    AxisWeights a;
    std::vector<kernels::AaWindow> win;
    for (int64_t d = 0; d < out; ++d) {
        win.push_back(kernels::aa_window(in, out, d));
        a.stride = std::max(a.stride, win.back().count);
    }
    a.w.assign(static_cast<size_t>(out * a.stride), 0.f);
    for (int64_t d = 0; d < out; ++d) {
        const auto& wd = win[static_cast<size_t>(d)];
        double total = 0;
        for (int64_t j = 0; j < wd.count; ++j) total += kernels::aa_weight(wd, wd.first + j);
        for (int64_t j = 0; j < wd.count; ++j)
            a.w[static_cast<size_t>(d * a.stride + j)] =
                static_cast<float>(total != 0.0 ? kernels::aa_weight(wd, wd.first + j) / total : 0.0);
        a.first.push_back(wd.first);
        a.count.push_back(wd.count);
    }
    return a;
}

}  // namespace

Tensor resize_antialiased(const Tensor& image, int64_t height, int64_t width) {
    GB_CHECK(image.rank() >= 2 && image.device().is_cpu(), "resize_antialiased: expected a CPU image [..., H, W], got ",
             image.shape().str());
    GB_CHECK(height > 0 && width > 0, "resize_antialiased: bad output size ", width, "x", height);
    const int64_t H = image.dim(image.rank() - 2), W = image.dim(image.rank() - 1);
    const int64_t planes = image.numel() / (H * W);
    std::vector<float> cur = image.to_vector<float>();
    int64_t h = H, w = W;
    if (width != W) {  // horizontal pass
        const AxisWeights a = axis_weights(W, width);
        std::vector<float> next(static_cast<size_t>(planes * h * width));
        for (int64_t r = 0; r < planes * h; ++r)
            for (int64_t x = 0; x < width; ++x) {
                const float* src = cur.data() + r * w + a.first[static_cast<size_t>(x)];
                const float* k = a.w.data() + x * a.stride;
                float acc = 0.f;
                for (int64_t j = 0; j < a.count[static_cast<size_t>(x)]; ++j) acc += src[j] * k[j];
                next[static_cast<size_t>(r * width + x)] = acc;
            }
        cur.swap(next);
        w = width;
    }
    if (height != H) {  // vertical pass
        const AxisWeights a = axis_weights(H, height);
        std::vector<float> next(static_cast<size_t>(planes * height * w));
        for (int64_t p = 0; p < planes; ++p)
            for (int64_t y = 0; y < height; ++y) {
                float* dst = next.data() + (p * height + y) * w;
                const float* k = a.w.data() + y * a.stride;
                for (int64_t x = 0; x < w; ++x) dst[x] = 0.f;
                for (int64_t j = 0; j < a.count[static_cast<size_t>(y)]; ++j) {
                    const float* src = cur.data() + (p * h + a.first[static_cast<size_t>(y)] + j) * w;
                    for (int64_t x = 0; x < w; ++x) dst[x] += src[x] * k[j];
                }
            }
        cur.swap(next);
        h = height;
    }
    std::vector<int64_t> dims = image.shape().dims();
    dims[dims.size() - 2] = height;
    dims[dims.size() - 1] = width;
    return from_vector(cur, Shape(dims));
}

}  // namespace gb::io
