#include "explain/lime.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/factory.h"
#include "explain/perturbation.h"
#include "kernels/backend.h"

namespace gb::explain {

namespace {

enum class Surrogate { Lime, KernelShap };

// Coalitions for one image: rows of K zeros/ones.
std::vector<std::vector<uint8_t>> draw_coalitions(Surrogate kind, int64_t K, int64_t T, Generator& g) {
    std::vector<std::vector<uint8_t>> z;
    if (kind == Surrogate::Lime) {
        z.emplace_back(static_cast<size_t>(K), 1);
        for (int64_t t = 1; t < T; ++t) {
            std::vector<uint8_t> row(static_cast<size_t>(K));
            for (auto& v : row) v = g.uniform() < 0.5f ? 1 : 0;
            z.push_back(std::move(row));
        }
        return z;
    }
    z.emplace_back(static_cast<size_t>(K), 0);  // none
    z.emplace_back(static_cast<size_t>(K), 1);  // all
    if (K < 2) return z;
    std::vector<double> cdf;
    double total = 0;
    for (int64_t s = 1; s < K; ++s) cdf.push_back(total += static_cast<double>(K - 1) / static_cast<double>(s * (K - s)));
    std::vector<int64_t> idx(static_cast<size_t>(K));
    for (int64_t t = 0; t < T; ++t) {
        const double u = g.uniform() * total;
        const int64_t s = std::min<int64_t>(K - 1, 1 + (std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin()));
        std::iota(idx.begin(), idx.end(), 0);
        std::vector<uint8_t> row(static_cast<size_t>(K), 0);
        for (int64_t i = 0; i < s; ++i) {  // partial Fisher-Yates: s distinct members
            std::swap(idx[static_cast<size_t>(i)], idx[static_cast<size_t>(i + static_cast<int64_t>(g.below(static_cast<uint64_t>(K - i))))]);
            row[static_cast<size_t>(idx[static_cast<size_t>(i)])] = 1;
        }
        z.push_back(std::move(row));
    }
    return z;
}

struct LinearFit {
    std::vector<double> coef;  // one per superpixel
    double intercept = 0;
};

// LIME's weighted ridge on coalitions zn [T][K] with scores yn [T].
LinearFit fit_lime(const std::vector<std::vector<uint8_t>>& zn, const std::vector<double>& yn, int64_t K,
                   const SurrogateOptions& o) {
    const int64_t T = static_cast<int64_t>(zn.size());
    std::vector<double> w(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {
        const double on = std::accumulate(zn[static_cast<size_t>(t)].begin(), zn[static_cast<size_t>(t)].end(), 0.0);
        const double d = 1.0 - std::sqrt(on / static_cast<double>(K));  // cosine distance to all ones
        w[static_cast<size_t>(t)] = std::sqrt(std::exp(-d * d / (double(o.kernel_width) * o.kernel_width)));
    }
    // Unpenalised intercept: centre A and y by their weighted means (as sklearn's Ridge).
    const double wsum = std::accumulate(w.begin(), w.end(), 0.0);
    std::vector<double> mean(static_cast<size_t>(K), 0.0);
    double ymean = 0;
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t j = 0; j < K; ++j) mean[static_cast<size_t>(j)] += w[static_cast<size_t>(t)] * zn[static_cast<size_t>(t)][static_cast<size_t>(j)] / wsum;
        ymean += w[static_cast<size_t>(t)] * yn[static_cast<size_t>(t)] / wsum;
    }
    std::vector<double> A(static_cast<size_t>(T * K)), yc(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t j = 0; j < K; ++j)
            A[static_cast<size_t>(t * K + j)] = zn[static_cast<size_t>(t)][static_cast<size_t>(j)] - mean[static_cast<size_t>(j)];
        yc[static_cast<size_t>(t)] = yn[static_cast<size_t>(t)] - ymean;
    }
    LinearFit f;
    // A superpixel present in every sample has a zero column; a tiny ridge keeps the system solvable.
    f.coef = weighted_ridge(A, yc, w, K, std::max(static_cast<double>(o.ridge), 1e-9));
    f.intercept = ymean;
    for (int64_t j = 0; j < K; ++j) f.intercept -= f.coef[static_cast<size_t>(j)] * mean[static_cast<size_t>(j)];
    return f;
}

// KernelSHAP's constrained least squares on coalitions zn [T][K] (the first two: none, all) with scores yn [T].
LinearFit fit_kernel_shap(const std::vector<std::vector<uint8_t>>& zn, const std::vector<double>& yn, int64_t K) {
    const int64_t T = static_cast<int64_t>(zn.size());
    const double none = yn[0], all = yn[1], delta = all - none;
    LinearFit f{std::vector<double>(static_cast<size_t>(K), 0.0), none};
    if (K == 1) {
        f.coef[0] = delta;
        return f;
    }
    // y - none - z_K delta = sum_{j<K} (z_j - z_K) phi_j; phi_K = delta - sum_{j<K} phi_j.
    const int64_t M = K - 1, R = T - 2;
    std::vector<double> A(static_cast<size_t>(R * M)), yc(static_cast<size_t>(R)), w(static_cast<size_t>(R), 1.0);
    for (int64_t t = 0; t < R; ++t) {
        const auto& row = zn[static_cast<size_t>(t + 2)];
        const double zk = row[static_cast<size_t>(M)];
        for (int64_t j = 0; j < M; ++j) A[static_cast<size_t>(t * M + j)] = row[static_cast<size_t>(j)] - zk;
        yc[static_cast<size_t>(t)] = yn[static_cast<size_t>(t + 2)] - none - zk * delta;
    }
    const auto phi = weighted_ridge(A, yc, w, M, 1e-9);
    double rest = delta;
    for (int64_t j = 0; j < M; ++j) rest -= f.coef[static_cast<size_t>(j)] = phi[static_cast<size_t>(j)];
    f.coef[static_cast<size_t>(M)] = rest;
    return f;
}

// out [H * W] on `device`: each pixel its superpixel's coefficient, as products of the
// coefficients [1, K] by the one-hot indicator of the labels [K, H * W] (exact: one term per
// pixel), a band of pixel columns at a time so the indicator stays small.
void segment_map(const std::vector<double>& coef, const Segmentation& s, float* out, Device device) {
    const int64_t K = s.count, HW = s.height * s.width;
    const int64_t band = std::max<int64_t>(1, std::min<int64_t>(HW, (int64_t{1} << 22) / K));
    std::vector<float> c(coef.begin(), coef.end()), onehot;
    const Tensor ct = from_vector(c, Shape{K}, device);
    kernels::Backend& be = kernels::backend_for(device);
    for (int64_t q0 = 0; q0 < HW; q0 += band) {
        const int64_t cols = std::min(band, HW - q0);
        onehot.assign(static_cast<size_t>(K * cols), 0.f);  // bookkeeping: where each pixel's label is
        for (int64_t q = 0; q < cols; ++q) onehot[static_cast<size_t>(s.labels[static_cast<size_t>(q0 + q)] * cols + q)] = 1.f;
        const Tensor ind = from_vector(onehot, Shape{K, cols}, device);
        be.gemm(false, false, 1, cols, K, 1.f, ct.data<float>(), K, ind.data<float>(), cols, 0.f, out + q0, cols);
    }
}

// The seeded score of every coalition of every image, [N][T]: one perturbation per (image,
// coalition), batched across images; a switched-off superpixel's pixels take the baseline.
std::vector<std::vector<double>> score_coalitions(layers::Layer& model, const Tensor& x, const Tensor& seed,
                                                  const std::vector<Segmentation>& segments,
                                                  const std::vector<std::vector<std::vector<uint8_t>>>& z, const SurrogateOptions& o) {
    const int64_t N = x.dim(0), HW = x.dim(2) * x.dim(3), K = seed.dim(1);
    const auto sv = seed.to_vector<float>();
    std::vector<std::pair<int64_t, int64_t>> rows;  // perturbation i -> (image, coalition)
    for (int64_t n = 0; n < N; ++n)
        for (size_t t = 0; t < z[static_cast<size_t>(n)].size(); ++t) rows.emplace_back(n, static_cast<int64_t>(t));
    Perturbations p;
    p.images = x;
    p.image = [&](int64_t i) { return rows[static_cast<size_t>(i)].first; };
    p.keep = [&](int64_t i, float* keep) {  // 1 on the pixels of the coalition's superpixels
        const auto [n, t] = rows[static_cast<size_t>(i)];
        const auto& labels = segments[static_cast<size_t>(n)].labels;
        const auto& on = z[static_cast<size_t>(n)][static_cast<size_t>(t)];
        for (int64_t q = 0; q < HW; ++q) keep[q] = on[static_cast<size_t>(labels[static_cast<size_t>(q)])] ? 1.f : 0.f;
    };
    p.value = o.baseline;
    p.count = static_cast<int64_t>(rows.size());
    p.batch = o.batch;
    p.score = [&](int64_t i, const float* logits, int64_t classes) {
        GB_CHECK(classes == K, "lime/kernelshap: a seed of ", K, " classes for a model of ", classes);
        return seeded_score(sv.data() + rows[static_cast<size_t>(i)].first * K, logits, K);
    };
    const std::vector<double> scores = score_perturbations(model, p);
    std::vector<std::vector<double>> y(static_cast<size_t>(N));
    for (size_t i = 0; i < rows.size(); ++i) y[static_cast<size_t>(rows[i].first)].push_back(scores[i]);
    return y;
}

SurrogateResult fit(Surrogate kind, layers::Layer& model, const Tensor& x, const Tensor& seed, const SurrogateOptions& o,
                    const std::vector<Segmentation>& given) {
    const char* name = kind == Surrogate::Lime ? "lime" : "kernelshap";
    GB_CHECK(x.rank() == 4, name, ": the input must be [N, C, H, W], got ", x.shape().str());
    const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), per = C * H * W;
    GB_CHECK(o.samples >= 2 && o.batch > 0 && o.kernel_width > 0.f && o.ridge >= 0.f, name,
             ": needs samples >= 2, batch > 0, kernel_width > 0, ridge >= 0");
    GB_CHECK(seed.rank() == 2 && seed.dim(0) == N, name, ": seed ", seed.shape().str(), " for ", N, " samples");
    GB_CHECK(given.empty() || static_cast<int64_t>(given.size()) == N, name, ": ", given.size(), " segmentations for ", N, " images");
    // SLIC is a sequential image algorithm: it segments host copies of the images.
    const auto xv = given.empty() ? x.to_vector<float>() : std::vector<float>();
    SurrogateResult r;
    std::vector<std::vector<std::vector<uint8_t>>> z(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) {
        if (given.empty()) {
            r.segments.push_back(slic(xv.data() + n * per, C, H, W, o.slic));
        } else {
            const Segmentation& s = given[static_cast<size_t>(n)];
            GB_CHECK(s.height == H && s.width == W && static_cast<int64_t>(s.labels.size()) == H * W && s.count >= 1 &&
                         std::all_of(s.labels.begin(), s.labels.end(), [&](int32_t l) { return l >= 0 && l < s.count; }),
                     name, ": segmentation ", n, " is not a labelling of ", H, "x", W, " by ", s.count, " labels (0 .. count-1)");
            r.segments.push_back(s);
        }
        Generator g(o.seed);
        g.set_state(o.seed, static_cast<uint64_t>(n) << 32);
        z[static_cast<size_t>(n)] = draw_coalitions(kind, r.segments.back().count, o.samples, g);
    }
    const auto y = score_coalitions(model, x, seed, r.segments, z, o);
    r.map = empty(Shape{N, 1, H, W}, DType::Float32, x.device());
    for (int64_t n = 0; n < N; ++n) {
        const int64_t K = r.segments[static_cast<size_t>(n)].count;
        // The regression is small and per image: it runs on the host, in double.
        LinearFit f = kind == Surrogate::Lime ? fit_lime(z[static_cast<size_t>(n)], y[static_cast<size_t>(n)], K, o)
                                              : fit_kernel_shap(z[static_cast<size_t>(n)], y[static_cast<size_t>(n)], K);
        segment_map(f.coef, r.segments[static_cast<size_t>(n)], r.map.data<float>() + n * H * W, x.device());
        r.coefficients.push_back(std::move(f.coef));
        r.intercept.push_back(f.intercept);
    }
    return r;
}

}  // namespace

std::vector<double> weighted_ridge(const std::vector<double>& A, const std::vector<double>& y, const std::vector<double>& w,
                                   int64_t cols, double ridge) {
    const int64_t R = static_cast<int64_t>(y.size());
    GB_CHECK(cols >= 1 && static_cast<int64_t>(A.size()) == R * cols && w.size() == y.size(),
             "weighted_ridge: A has ", A.size(), " values for ", R, " rows of ", cols);
    const size_t M = static_cast<size_t>(cols);
    std::vector<double> G(M * M, 0.0), b(M, 0.0);
    for (int64_t t = 0; t < R; ++t) {
        const double* a = A.data() + t * cols;
        const double wt = w[static_cast<size_t>(t)];
        for (size_t i = 0; i < M; ++i) {
            b[i] += wt * a[i] * y[static_cast<size_t>(t)];
            for (size_t j = 0; j <= i; ++j) G[i * M + j] += wt * a[i] * a[j];
        }
    }
    for (size_t i = 0; i < M; ++i) G[i * M + i] += ridge;
    // Cholesky G = L L^T in the lower triangle.
    for (size_t j = 0; j < M; ++j) {
        double d = G[j * M + j];
        for (size_t k = 0; k < j; ++k) d -= G[j * M + k] * G[j * M + k];
        GB_CHECK(d > 0, "weighted_ridge: the system is singular (column ", j, "); add samples or a ridge");
        G[j * M + j] = std::sqrt(d);
        for (size_t i = j + 1; i < M; ++i) {
            double s = G[i * M + j];
            for (size_t k = 0; k < j; ++k) s -= G[i * M + k] * G[j * M + k];
            G[i * M + j] = s / G[j * M + j];
        }
    }
    std::vector<double> x(M);
    for (size_t i = 0; i < M; ++i) {
        double s = b[i];
        for (size_t k = 0; k < i; ++k) s -= G[i * M + k] * x[k];
        x[i] = s / G[i * M + i];
    }
    for (size_t i = M; i-- > 0;) {
        double s = x[i];
        for (size_t k = i + 1; k < M; ++k) s -= G[k * M + i] * x[k];
        x[i] = s / G[i * M + i];
    }
    return x;
}

SurrogateResult lime(layers::Layer& model, const Tensor& x, const Tensor& seed, const SurrogateOptions& o,
                     const std::vector<Segmentation>& segments) {
    return fit(Surrogate::Lime, model, x, seed, o, segments);
}

SurrogateResult kernel_shap(layers::Layer& model, const Tensor& x, const Tensor& seed, const SurrogateOptions& o,
                            const std::vector<Segmentation>& segments) {
    return fit(Surrogate::KernelShap, model, x, seed, o, segments);
}

}  // namespace gb::explain
