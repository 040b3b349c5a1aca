#include "train/loader.h"

#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/parallel.h"
#include "core/philox.h"
#include "core/rng.h"

namespace gb::train {

DataLoader::DataLoader(const io::Dataset& data, LoaderOptions options) : data_(data), opt_(std::move(options)) {
    GB_CHECK(data_.size() > 0, "data loader: dataset '", data_.name, "' is empty");
    GB_CHECK(opt_.batch_size > 0, "data loader: batch size must be positive, got ", opt_.batch_size);
    const int64_t C = data_.channels();
    GB_CHECK(opt_.mean.size() == opt_.stddev.size() &&
                 (opt_.mean.empty() || static_cast<int64_t>(opt_.mean.size()) == C),
             "data loader: normalisation needs one mean and one std per channel (", C, ")");
    for (float s : opt_.stddev) GB_CHECK(s > 0.f, "data loader: normalisation std must be positive");
    GB_CHECK(opt_.crop_padding >= 0 && opt_.crop_padding <= 1 << 16, "data loader: crop padding must be in [0, 65536], got ",
             opt_.crop_padding);
    set_epoch(0);
}

void DataLoader::set_epoch(int64_t epoch) {
    epoch_ = epoch;
    order_.resize(static_cast<size_t>(data_.size()));
    std::iota(order_.begin(), order_.end(), 0);
    if (!opt_.shuffle) return;
    Generator g(opt_.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch) + 1);
    for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[g.below(i)]);
}

int64_t DataLoader::size() const {
    const int64_t n = data_.size(), b = opt_.batch_size;
    return opt_.drop_last ? n / b : n / b + (n % b != 0);  // (n + b - 1) / b overflows for huge b
}

Batch DataLoader::batch(int64_t index) const {
    GB_CHECK(index >= 0 && index < size(), "data loader: batch ", index, " out of range (", size(), " batches)");
    return batch(index, 0, std::min(opt_.batch_size, data_.size() - index * opt_.batch_size));
}

Batch DataLoader::batch(int64_t index, int64_t first, int64_t count) const {
    GB_CHECK(index >= 0 && index < size(), "data loader: batch ", index, " out of range (", size(), " batches)");
    const int64_t rows = std::min(opt_.batch_size, data_.size() - index * opt_.batch_size);
    GB_CHECK(first >= 0 && count >= 0 && first + count <= rows, "data loader: rows [", first, ", ", first + count,
             ") of batch ", index, ", which has ", rows);
    const int64_t start = index * opt_.batch_size + first;
    const int64_t B = count;
    const int64_t C = data_.channels(), H = data_.height(), W = data_.width(), plane = H * W;
    Batch out;
    out.images = Tensor(Shape{B, C, H, W});
    out.labels = Tensor(Shape{B}, DType::Int32);
    out.indices.assign(order_.begin() + start, order_.begin() + start + B);
    const float* src = data_.images.data<float>();
    const int32_t* lab = data_.labels.data<int32_t>();
    float* dst = out.images.data<float>();
    const uint64_t key = opt_.seed ^ 0xA5A5A5A5A5A5A5A5ull;
    const int64_t pad = opt_.crop_padding;
    parallel_for(0, B, 8, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
            const int64_t s = out.indices[static_cast<size_t>(b)];
            // Augmentation draws: counter = (epoch, sample), so they do not depend on the batch layout.
            const Philox4 r = philox4x32(key, static_cast<uint64_t>(epoch_) * static_cast<uint64_t>(data_.size()) +
                                                  static_cast<uint64_t>(s));
            const int64_t dy = pad ? static_cast<int64_t>(r.v[0] % static_cast<uint32_t>(2 * pad + 1)) - pad : 0;
            const int64_t dx = pad ? static_cast<int64_t>(r.v[1] % static_cast<uint32_t>(2 * pad + 1)) - pad : 0;
            const bool flip = opt_.hflip && (r.v[2] & 1u);
            for (int64_t c = 0; c < C; ++c) {
                const float m = opt_.mean.empty() ? 0.f : opt_.mean[static_cast<size_t>(c)];
                const float inv = opt_.mean.empty() ? 1.f : 1.f / opt_.stddev[static_cast<size_t>(c)];
                const float* in = src + (s * C + c) * plane;
                float* o = dst + (b * C + c) * plane;
                for (int64_t y = 0; y < H; ++y)
                    for (int64_t x = 0; x < W; ++x) {
                        const int64_t sy = y + dy, sx0 = x + dx, sx = flip ? W - 1 - sx0 : sx0;
                        const bool inside = sy >= 0 && sy < H && sx0 >= 0 && sx0 < W;
                        const float v = inside ? in[sy * W + sx] : 0.f;
                        o[y * W + x] = (v - m) * inv;
                    }
            }
            out.labels.data<int32_t>()[b] = lab[s];
        }
    });
    return out;
}

void channel_stats(const io::Dataset& data, std::vector<float>& mean, std::vector<float>& stddev) {
    const int64_t N = data.size(), C = data.channels(), plane = data.height() * data.width();
    GB_CHECK(N > 0, "channel_stats: empty dataset");
    mean.assign(static_cast<size_t>(C), 0.f);
    stddev.assign(static_cast<size_t>(C), 0.f);
    const float* p = data.images.data<float>();
    for (int64_t c = 0; c < C; ++c) {
        double s = 0, s2 = 0;
        for (int64_t n = 0; n < N; ++n) {
            const float* q = p + (n * C + c) * plane;
            for (int64_t i = 0; i < plane; ++i) {
                s += q[i];
                s2 += static_cast<double>(q[i]) * q[i];
            }
        }
        const double cnt = static_cast<double>(N * plane), m = s / cnt;
        mean[static_cast<size_t>(c)] = static_cast<float>(m);
        stddev[static_cast<size_t>(c)] = static_cast<float>(std::sqrt(std::max(1e-12, s2 / cnt - m * m)));
    }
}

}  // namespace gb::train
