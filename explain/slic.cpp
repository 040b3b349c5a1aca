#include "explain/slic.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace gb::explain {

namespace {

struct Centre {
    double y, x;
    std::vector<double> colour;
};

// Connected pieces (4-neighbourhood) of each label; small ones join a neighbour, then labels are renumbered.
void enforce_connectivity(Segmentation& s, int64_t min_size) {
    const int64_t H = s.height, W = s.width, P = H * W;
    std::vector<int32_t> out(static_cast<size_t>(P), -1);
    std::vector<int64_t> stack, piece;
    int32_t next = 0;
    const int64_t dy[4] = {-1, 0, 0, 1}, dx[4] = {0, -1, 1, 0};
    for (int64_t start = 0; start < P; ++start) {
        if (out[static_cast<size_t>(start)] >= 0) continue;
        const int32_t lab = s.labels[static_cast<size_t>(start)];
        // The label of an already-visited neighbour of the piece's first pixel (raster order: above or left).
        int32_t adjacent = -1;
        for (int k = 0; k < 4; ++k) {
            const int64_t y = start / W + dy[k], x = start % W + dx[k];
            if (y >= 0 && y < H && x >= 0 && x < W && out[static_cast<size_t>(y * W + x)] >= 0) adjacent = out[static_cast<size_t>(y * W + x)];
        }
        piece.clear();
        stack.assign(1, start);
        out[static_cast<size_t>(start)] = next;
        while (!stack.empty()) {
            const int64_t p = stack.back();
            stack.pop_back();
            piece.push_back(p);
            for (int k = 0; k < 4; ++k) {
                const int64_t y = p / W + dy[k], x = p % W + dx[k];
                if (y < 0 || y >= H || x < 0 || x >= W) continue;
                const int64_t q = y * W + x;
                if (out[static_cast<size_t>(q)] < 0 && s.labels[static_cast<size_t>(q)] == lab) {
                    out[static_cast<size_t>(q)] = next;
                    stack.push_back(q);
                }
            }
        }
        if (static_cast<int64_t>(piece.size()) < min_size && adjacent >= 0) {
            for (int64_t p : piece) out[static_cast<size_t>(p)] = adjacent;
        } else {
            ++next;
        }
    }
    s.labels = std::move(out);
    s.count = next;
}

}  // namespace

Segmentation slic(const Tensor& image, const SlicOptions& o) {
    GB_CHECK(image.rank() == 3, "slic: the image must be [C, H, W], got ", image.shape().str());
    const auto v = image.to_vector<float>();
    return slic(v.data(), image.dim(0), image.dim(1), image.dim(2), o);
}

Segmentation slic(const float* image, int64_t C, int64_t H, int64_t W, const SlicOptions& o) {
    GB_CHECK(C >= 1 && H >= 1 && W >= 1, "slic: empty image ", C, "x", H, "x", W);
    GB_CHECK(o.segments >= 1 && o.compactness > 0.f && o.iterations >= 1 && o.min_size_factor >= 0.f,
             "slic: needs segments >= 1, compactness > 0, iterations >= 1, min_size_factor >= 0");
    const int64_t P = H * W;
    // Colours scaled to [0, 1] over the whole image.
    const auto [lo_it, hi_it] = std::minmax_element(image, image + C * P);
    const double lo = *lo_it, range = *hi_it > *lo_it ? *hi_it - *lo_it : 1.0;
    std::vector<double> img(static_cast<size_t>(C * P));
    for (int64_t i = 0; i < C * P; ++i) img[static_cast<size_t>(i)] = (image[i] - lo) / range;
    auto col = [&](int64_t c, int64_t y, int64_t x) { return img[static_cast<size_t>((c * H + y) * W + x)]; };

    const double S = std::sqrt(static_cast<double>(P) / static_cast<double>(o.segments));
    const int64_t ny = std::max<int64_t>(1, std::llround(H / S)), nx = std::max<int64_t>(1, std::llround(W / S));
    std::vector<Centre> centres;
    for (int64_t i = 0; i < ny; ++i)
        for (int64_t j = 0; j < nx; ++j) {
            int64_t cy = static_cast<int64_t>((i + 0.5) * H / ny), cx = static_cast<int64_t>((j + 0.5) * W / nx);
            // Lowest gradient in the 3x3 neighbourhood (so a centre does not start on an edge).
            double best = std::numeric_limits<double>::infinity();
            int64_t by = cy, bx = cx;
            for (int64_t y = std::max<int64_t>(1, cy - 1); y <= std::min(H - 2, cy + 1); ++y)
                for (int64_t x = std::max<int64_t>(1, cx - 1); x <= std::min(W - 2, cx + 1); ++x) {
                    double g = 0;
                    for (int64_t c = 0; c < C; ++c) {
                        const double gx = col(c, y, x + 1) - col(c, y, x - 1), gy = col(c, y + 1, x) - col(c, y - 1, x);
                        g += gx * gx + gy * gy;
                    }
                    if (g < best) best = g, by = y, bx = x;
                }
            Centre ce{static_cast<double>(by), static_cast<double>(bx), std::vector<double>(static_cast<size_t>(C))};
            for (int64_t c = 0; c < C; ++c) ce.colour[static_cast<size_t>(c)] = col(c, by, bx);
            centres.push_back(std::move(ce));
        }
    const int64_t K = static_cast<int64_t>(centres.size());
    const double inv_m2 = 1.0 / (static_cast<double>(o.compactness) * o.compactness), inv_s2 = 1.0 / (S * S);
    Segmentation seg;
    seg.height = H;
    seg.width = W;
    seg.labels.assign(static_cast<size_t>(P), 0);
    std::vector<double> dist(static_cast<size_t>(P));
    for (int64_t it = 0; it < o.iterations; ++it) {
        std::fill(dist.begin(), dist.end(), std::numeric_limits<double>::infinity());
        for (int64_t k = 0; k < K; ++k) {
            const Centre& ce = centres[static_cast<size_t>(k)];
            const int64_t y0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(ce.y - 2 * S))),
                          y1 = std::min<int64_t>(H - 1, static_cast<int64_t>(std::ceil(ce.y + 2 * S))),
                          x0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(ce.x - 2 * S))),
                          x1 = std::min<int64_t>(W - 1, static_cast<int64_t>(std::ceil(ce.x + 2 * S)));
            for (int64_t y = y0; y <= y1; ++y)
                for (int64_t x = x0; x <= x1; ++x) {
                    double dc = 0;
                    for (int64_t c = 0; c < C; ++c) {
                        const double d = col(c, y, x) - ce.colour[static_cast<size_t>(c)];
                        dc += d * d;
                    }
                    const double ds = (y - ce.y) * (y - ce.y) + (x - ce.x) * (x - ce.x);
                    const double D = dc * inv_m2 + ds * inv_s2;
                    if (D < dist[static_cast<size_t>(y * W + x)]) {
                        dist[static_cast<size_t>(y * W + x)] = D;
                        seg.labels[static_cast<size_t>(y * W + x)] = static_cast<int32_t>(k);
                    }
                }
        }
        std::vector<Centre> sum(static_cast<size_t>(K), Centre{0, 0, std::vector<double>(static_cast<size_t>(C), 0.0)});
        std::vector<int64_t> count(static_cast<size_t>(K), 0);
        for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x) {
                const size_t k = static_cast<size_t>(seg.labels[static_cast<size_t>(y * W + x)]);
                sum[k].y += static_cast<double>(y);
                sum[k].x += static_cast<double>(x);
                for (int64_t c = 0; c < C; ++c) sum[k].colour[static_cast<size_t>(c)] += col(c, y, x);
                ++count[k];
            }
        for (size_t k = 0; k < static_cast<size_t>(K); ++k) {
            if (count[k] == 0) continue;  // an empty cluster keeps its centre
            const double n = static_cast<double>(count[k]);
            centres[k].y = sum[k].y / n;
            centres[k].x = sum[k].x / n;
            for (int64_t c = 0; c < C; ++c) centres[k].colour[static_cast<size_t>(c)] = sum[k].colour[static_cast<size_t>(c)] / n;
        }
    }
    const int64_t min_size = static_cast<int64_t>(o.min_size_factor * static_cast<double>(P) / static_cast<double>(o.segments));
    enforce_connectivity(seg, min_size);
    return seg;
}

}  // namespace gb::explain
