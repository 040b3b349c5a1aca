#include "explain/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/factory.h"
#include "explain/perturbation.h"
#include "kernels/backend.h"

namespace gb::explain {

namespace {

void check_maps(const Tensor& x, const Tensor& maps, size_t classes, const char* what) {
    GB_CHECK(x.rank() == 4, what, ": the input must be [N, C, H, W], got ", x.shape().str());
    GB_CHECK(maps.rank() == 4 && maps.dim(0) == x.dim(0) && maps.dim(2) == x.dim(2) && maps.dim(3) == x.dim(3),
             what, ": maps ", maps.shape().str(), " do not fit the input ", x.shape().str(),
             " (expected [N, C or 1, H, W])");
    GB_CHECK(static_cast<int64_t>(classes) == x.dim(0), what, ": ", classes, " classes for ", x.dim(0), " samples");
    // A NaN ranks nowhere and sums to NaN: scores of such a map would be meaningless.
    for (int64_t n = 0; n < maps.dim(0); ++n)
        if (const int64_t bad = count_non_finite(maps.narrow(n, 1)))
            GB_FAIL(what, ": the map of sample ", n, " holds ", bad, " NaN or infinite value", bad > 1 ? "s" : "",
                    "; it cannot be scored");
}

// Per sample, the map summed over its channels (on the maps' backend): [N][H * W].
std::vector<std::vector<float>> channel_sums(const Tensor& maps) {
    const int64_t N = maps.dim(0), C = maps.dim(1), HW = maps.dim(2) * maps.dim(3);
    Tensor sums = empty(Shape{N * HW}, DType::Float32, maps.device());
    kernels::backend_for(maps.device()).sum_dim(N, C, HW, maps.data<float>(), sums.data<float>());
    const auto v = sums.to_vector<float>();
    std::vector<std::vector<float>> out;
    for (int64_t n = 0; n < N; ++n) out.emplace_back(v.begin() + n * HW, v.begin() + (n + 1) * HW);
    return out;
}

std::vector<double> ranks(const std::vector<float>& v) {
    std::vector<size_t> idx(v.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
    std::vector<double> r(v.size());
    for (size_t i = 0; i < idx.size();) {
        size_t j = i;
        while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]]) ++j;
        const double avg = 0.5 * static_cast<double>(i + j) + 1.0;
        for (size_t k = i; k <= j; ++k) r[idx[k]] = avg;
        i = j + 1;
    }
    return r;
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
    const double n = static_cast<double>(a.size());
    const double ma = std::accumulate(a.begin(), a.end(), 0.0) / n, mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

// |v| / max |v| (all zero stays zero).
std::vector<float> abs_scaled(const std::vector<float>& v) {
    float m = 0.f;
    for (float a : v) m = std::max(m, std::fabs(a));
    std::vector<float> out(v.size(), 0.f);
    if (m > 0.f)
        for (size_t i = 0; i < v.size(); ++i) out[i] = std::fabs(v[i]) / m;
    return out;
}

// The Gaussian blur along one axis of length L with edges clamped, as a matrix [L, L]: row i
// holds the weight of each source j (the taps beyond an edge add onto the edge's pixel).
std::vector<float> blur_matrix(int64_t L, float sigma) {
    const int64_t r = static_cast<int64_t>(std::ceil(3.f * sigma));
    std::vector<double> k(static_cast<size_t>(2 * r + 1));
    double ks = 0;
    for (int64_t i = -r; i <= r; ++i) ks += k[static_cast<size_t>(i + r)] = std::exp(-0.5 * double(i * i) / (sigma * sigma));
    std::vector<double> m(static_cast<size_t>(L * L), 0.0);
    for (int64_t i = 0; i < L; ++i)
        for (int64_t t = -r; t <= r; ++t) m[static_cast<size_t>(i * L + std::clamp<int64_t>(i + t, 0, L - 1))] += k[static_cast<size_t>(t + r)] / ks;
    return std::vector<float>(m.begin(), m.end());
}

// x [planes, H, W] blurred with a Gaussian of `sigma` pixels, edges clamped, separably on x's
// backend: rows by one GEMM with the [W, W] blur matrix, then columns by the [H, H] one per plane.
Tensor gaussian_blur(const Tensor& x, int64_t planes, int64_t H, int64_t W, float sigma) {
    // Sigma beyond kMaxBlurSigma would need a kernel of millions of taps (and a
    // blur that wide is a flat image anyway): refused rather than allocated.
    GB_CHECK(sigma > 0.f && sigma <= kMaxBlurSigma, "blur: sigma must be in (0, ", kMaxBlurSigma, "] pixels, got ", sigma);
    const Device dev = x.device();
    kernels::Backend& be = kernels::backend_for(dev);
    const Tensor bw = from_vector(blur_matrix(W, sigma), Shape{W, W}, dev), bh = from_vector(blur_matrix(H, sigma), Shape{H, H}, dev);
    Tensor rows = empty(x.shape(), DType::Float32, dev), out = empty(x.shape(), DType::Float32, dev);
    be.gemm(false, true, planes * H, W, W, 1.f, x.data<float>(), W, bw.data<float>(), W, 0.f, rows.data<float>(), W);
    for (int64_t p = 0; p < planes; ++p)
        be.gemm(false, false, H, W, H, 1.f, bh.data<float>(), H, rows.data<float>() + p * H * W, W, 0.f,
                out.data<float>() + p * H * W, W);
    return out;
}

// Restores every parameter of a model when it goes out of scope.
class ParameterBackup {
public:
    explicit ParameterBackup(layers::Layer& model) {
        for (auto& p : model.parameters()) saved_.emplace_back(p, p.clone());
    }
    ~ParameterBackup() {
        for (auto& [p, copy] : saved_) p.copy_from(copy);
    }
    ParameterBackup(const ParameterBackup&) = delete;
    ParameterBackup& operator=(const ParameterBackup&) = delete;

private:
    std::vector<std::pair<Tensor, Tensor>> saved_;
};

}  // namespace

Replacement parse_replacement(const std::string& name) {
    if (name == "value") return Replacement::Value;
    if (name == "noise") return Replacement::Noise;
    if (name == "mean") return Replacement::Mean;
    if (name == "blur") return Replacement::Blur;
    GB_FAIL("unknown replacement '", name, "' (value, noise, mean, blur)");
}

std::string replacement_name(Replacement r) {
    switch (r) {
        case Replacement::Value: return "value";
        case Replacement::Noise: return "noise";
        case Replacement::Mean: return "mean";
        case Replacement::Blur: return "blur";
    }
    return "?";
}

std::vector<double> Curves::mean() const {
    std::vector<double> m(static_cast<size_t>(points), 0.0);
    for (int64_t n = 0; n < samples; ++n)
        for (int64_t k = 0; k < points; ++k) m[static_cast<size_t>(k)] += at(n, k) / static_cast<double>(samples);
    return m;
}

void Curves::append(const Curves& more) {
    if (samples == 0) {
        *this = more;
        return;
    }
    GB_CHECK(more.points == points, "curves: cannot append ", more.points, " points to ", points);
    values.insert(values.end(), more.values.begin(), more.values.end());
    samples += more.samples;
}

std::vector<int64_t> rank_units(const Tensor& maps, int64_t n, int64_t patch, uint64_t seed) {
    GB_CHECK(patch >= 1, "perturbation: patch must be >= 1, got ", patch);
    const int64_t C = maps.dim(1), H = maps.dim(2), W = maps.dim(3);
    const int64_t gy = (H + patch - 1) / patch, gx = (W + patch - 1) / patch;
    // Ranking is sorting, on the host; the unit sums feeding it stay there too (in double, so
    // equal units tie exactly and take the seeded order).
    const auto v = maps.narrow(n, 1).to_vector<float>();
    std::vector<double> rel(static_cast<size_t>(gy * gx), 0.0);
    for (int64_t c = 0; c < C; ++c)
        for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x)
                rel[static_cast<size_t>((y / patch) * gx + x / patch)] += v[static_cast<size_t>((c * H + y) * W + x)];
    std::vector<int64_t> order(rel.size());
    std::iota(order.begin(), order.end(), 0);
    Generator g(seed);
    g.set_state(seed, static_cast<uint64_t>(n) << 20);
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[g.below(i)]);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        return rel[static_cast<size_t>(a)] > rel[static_cast<size_t>(b)];
    });
    return order;
}

Tensor replacement_image(const Tensor& x, const PerturbationOptions& o) {
    const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), HW = H * W;
    const Device dev = x.device();
    kernels::Backend& be = kernels::backend_for(dev);
    switch (o.replacement) {
        case Replacement::Value: {
            Tensor v = empty(x.shape(), DType::Float32, dev);
            be.fill(v.numel(), o.value, v.data<float>());
            return v;
        }
        case Replacement::Noise: {
            GB_CHECK(o.noise_low < o.noise_high, "noise replacement: low ", o.noise_low, " must be below high ", o.noise_high);
            Generator g(o.seed);
            return uniform(x.shape(), o.noise_low, o.noise_high, g, dev);  // the generator's sequence, drawn on the host
        }
        case Replacement::Mean: {  // each plane's mean spread over the plane
            Tensor sums = empty(Shape{N * C}, DType::Float32, dev), v = empty(x.shape(), DType::Float32, dev);
            be.sum_dim(N * C, HW, 1, x.data<float>(), sums.data<float>());
            be.broadcast_dim(N * C, HW, 1, 1.f / static_cast<float>(HW), sums.data<float>(), v.data<float>());
            return v;
        }
        case Replacement::Blur: return gaussian_blur(x, N * C, H, W, o.blur_sigma);
    }
    GB_FAIL("replacement: unknown kind");
}

Curves perturbation_curves(layers::Layer& model, const Tensor& x, const Tensor& maps, const std::vector<int32_t>& classes,
                           const PerturbationOptions& o, const Tensor& x_logits) {
    check_maps(x, maps, classes.size(), "perturbation curves");
    GB_CHECK(o.steps >= 1 && o.units_per_step >= 0 && o.batch > 0, "perturbation curves: steps must be >= 1 (got ",
             o.steps, "), units_per_step >= 0 (got ", o.units_per_step, ")");
    const int64_t N = x.dim(0), H = x.dim(2), W = x.dim(3);
    const int64_t p = o.patch, gx = (W + p - 1) / p, units = ((H + p - 1) / p) * gx;
    const int64_t step = o.units_per_step > 0 ? o.units_per_step : (units + o.steps - 1) / o.steps;
    Curves c;
    c.samples = N;
    c.points = o.steps + 1;
    for (int64_t k = 0; k <= o.steps; ++k)
        c.fraction.push_back(static_cast<double>(std::min(units, k * step)) / static_cast<double>(units));
    c.values.resize(static_cast<size_t>(N * c.points));
    // Ranking the units is sorting: on the host.
    std::vector<std::vector<int64_t>> order(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) order[static_cast<size_t>(n)] = rank_units(maps, n, p, o.seed);
    // A point's score from a row of logits.
    auto score = [&](const float* row, int64_t K, int64_t n) {
        const int32_t cls = classes[static_cast<size_t>(n)];
        GB_CHECK(cls >= 0 && cls < K, "perturbation curves: class ", cls, " is outside [0, ", K, ")");
        if (!o.probability) return static_cast<double>(row[cls]);
        const float mx = *std::max_element(row, row + K);
        double z = 0;
        for (int64_t k = 0; k < K; ++k) z += std::exp(static_cast<double>(row[k] - mx));
        return std::exp(static_cast<double>(row[cls] - mx)) / z;
    };
    // Points whose input is x itself (deletion of nothing, insertion of everything) come from x_logits.
    std::vector<int64_t> rows;  // n * points + k of the points that need a forward pass
    for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < c.points; ++k) {
            const int64_t m = std::min(units, k * step);
            const bool is_x = o.insertion ? m == units : m == 0;
            if (is_x && x_logits.defined()) continue;
            rows.push_back(n * c.points + k);
        }
    if (x_logits.defined()) {
        GB_CHECK(x_logits.rank() == 2 && x_logits.dim(0) == N, "perturbation curves: x_logits ", x_logits.shape().str(),
                 " for ", N, " samples");
        const int64_t K = x_logits.dim(1);
        const auto l = x_logits.to_vector<float>();
        for (int64_t n = 0; n < N; ++n)
            for (int64_t k = 0; k < c.points; ++k) {
                const int64_t m = std::min(units, k * step);
                if (o.insertion ? m == units : m == 0) c.values[static_cast<size_t>(n * c.points + k)] = score(l.data() + n * K, K, n);
            }
    }
    // Point (n, k) is x with its first m units replaced (deletion), or the replacement with
    // them restored (insertion): keep is 1 where x shows.
    Perturbations pert;
    pert.images = x;
    pert.replacement = replacement_image(x, o);
    pert.image = [&](int64_t i) { return rows[static_cast<size_t>(i)] / c.points; };
    pert.keep = [&](int64_t i, float* keep) {
        const int64_t row = rows[static_cast<size_t>(i)];
        const int64_t n = row / c.points, k = row % c.points, m = std::min(units, k * step);
        const float first = o.insertion ? 1.f : 0.f;  // keep of the first m units; the others the opposite
        std::fill(keep, keep + H * W, 1.f - first);
        for (int64_t u = 0; u < m; ++u) {
            const int64_t unit = order[static_cast<size_t>(n)][static_cast<size_t>(u)];
            const int64_t y0 = (unit / gx) * p, x0 = (unit % gx) * p;
            for (int64_t y = y0; y < std::min(H, y0 + p); ++y) std::fill(keep + y * W + x0, keep + y * W + std::min(W, x0 + p), first);
        }
    };
    pert.count = static_cast<int64_t>(rows.size());
    pert.batch = o.batch;
    pert.score = [&](int64_t i, const float* logits, int64_t K) { return score(logits, K, rows[static_cast<size_t>(i)] / c.points); };
    const std::vector<double> scores = score_perturbations(model, pert);
    for (size_t i = 0; i < rows.size(); ++i) c.values[static_cast<size_t>(rows[i])] = scores[i];
    return c;
}

std::vector<double> aopc_per_sample(const Curves& c) {
    GB_CHECK(c.samples > 0, "aopc: no curves");
    std::vector<double> out(static_cast<size_t>(c.samples), 0.0);
    for (int64_t n = 0; n < c.samples; ++n)
        for (int64_t k = 0; k < c.points; ++k)
            out[static_cast<size_t>(n)] += (c.at(n, 0) - c.at(n, k)) / static_cast<double>(c.points);
    return out;
}

std::vector<double> area_per_sample(const Curves& c) {
    GB_CHECK(c.samples > 0 && c.points >= 2, "area under curve: needs curves with at least 2 points");
    std::vector<double> out(static_cast<size_t>(c.samples), 0.0);
    for (int64_t n = 0; n < c.samples; ++n)
        for (int64_t k = 1; k < c.points; ++k)
            out[static_cast<size_t>(n)] += 0.5 * (c.at(n, k) + c.at(n, k - 1)) *
                                           (c.fraction[static_cast<size_t>(k)] - c.fraction[static_cast<size_t>(k - 1)]);
    return out;
}

double aopc(const Curves& c) {
    const auto v = aopc_per_sample(c);
    return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double area_under_curve(const Curves& c) {
    const auto v = area_per_sample(c);
    return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double spearman(const std::vector<float>& a, const std::vector<float>& b) {
    GB_CHECK(a.size() == b.size() && !a.empty(), "spearman: sizes ", a.size(), " and ", b.size());
    return pearson(ranks(a), ranks(b));
}

double ssim(const std::vector<float>& a, const std::vector<float>& b, int64_t H, int64_t W, double R) {
    constexpr int64_t kWin = 7, kPad = kWin / 2;
    GB_CHECK(static_cast<int64_t>(a.size()) == H * W && static_cast<int64_t>(b.size()) == H * W && H >= kWin && W >= kWin,
             "ssim: two ", H, "x", W, " images of at least 7x7 expected, got ", a.size(), " and ", b.size(), " values");
    const double C1 = (0.01 * R) * (0.01 * R), C2 = (0.03 * R) * (0.03 * R), np = kWin * kWin, cov = np / (np - 1);
    double total = 0;
    int64_t count = 0;
    for (int64_t y = kPad; y < H - kPad; ++y)
        for (int64_t x = kPad; x < W - kPad; ++x) {
            double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
            for (int64_t dy = -kPad; dy <= kPad; ++dy)
                for (int64_t dx = -kPad; dx <= kPad; ++dx) {
                    const double va = a[static_cast<size_t>((y + dy) * W + x + dx)], vb = b[static_cast<size_t>((y + dy) * W + x + dx)];
                    sa += va, sb += vb, saa += va * va, sbb += vb * vb, sab += va * vb;
                }
            const double ua = sa / np, ub = sb / np;
            const double va = cov * (saa / np - ua * ua), vb = cov * (sbb / np - ub * ub), vab = cov * (sab / np - ua * ub);
            total += ((2 * ua * ub + C1) * (2 * vab + C2)) / ((ua * ua + ub * ub + C1) * (va + vb + C2));
            ++count;
        }
    return total / static_cast<double>(count);
}

std::vector<RandomisationStep> randomisation_check(layers::Layer& model, const Tensor& x,
                                                   const std::vector<int32_t>& classes, const Explainer& explainer,
                                                   uint64_t seed) {
    GB_CHECK(static_cast<int64_t>(classes.size()) == x.dim(0), "randomisation check: ", classes.size(),
             " classes for ", x.dim(0), " samples");
    std::vector<std::pair<std::string, layers::Layer*>> weighted;
    for (auto& [path, layer] : model.named_layers()) {
        if (!layer->children().empty()) continue;
        for (const auto& [name, p] : layer->named_parameters())
            if (name == "weight" && p.rank() >= 2) weighted.emplace_back(path, layer);
    }
    GB_CHECK(!weighted.empty(), "randomisation check: the model has no layer with a weight matrix or kernel");
    const Tensor original = explainer(model, x, classes);
    check_maps(x, original, classes.size(), "randomisation check");
    const auto ref = channel_sums(original);
    const int64_t N = x.dim(0), H = x.dim(2), W = x.dim(3);
    ParameterBackup backup(model);
    Generator g(seed);
    std::vector<RandomisationStep> out;
    for (auto it = weighted.rbegin(); it != weighted.rend(); ++it) {
        auto params = it->second->named_parameters();
        int64_t fan_in = 1;
        for (const auto& [name, p] : params)
            if (name == "weight") fan_in = p.numel() / p.dim(0);
        const float bound = 1.f / std::sqrt(static_cast<float>(fan_in));
        for (auto& [name, p] : params) p.copy_from(uniform(p.shape(), -bound, bound, g, p.device()));
        const auto maps = channel_sums(explainer(model, x, classes));
        RandomisationStep s;
        s.layer = it->first;
        // Rank correlations and SSIM of final maps: per-sample statistics, on the host.
        for (int64_t n = 0; n < N; ++n) {
            const auto& a = ref[static_cast<size_t>(n)];
            const auto& b = maps[static_cast<size_t>(n)];
            s.spearman_per_sample.push_back(spearman(a, b));
            s.spearman += s.spearman_per_sample.back() / static_cast<double>(N);
            std::vector<float> aa(a.size()), ab(b.size());
            std::transform(a.begin(), a.end(), aa.begin(), [](float v) { return std::fabs(v); });
            std::transform(b.begin(), b.end(), ab.begin(), [](float v) { return std::fabs(v); });
            s.spearman_abs_per_sample.push_back(spearman(aa, ab));
            s.spearman_abs += s.spearman_abs_per_sample.back() / static_cast<double>(N);
            s.ssim_per_sample.push_back(ssim(abs_scaled(a), abs_scaled(b), H, W));
            s.ssim += s.ssim_per_sample.back() / static_cast<double>(N);
        }
        out.push_back(s);
    }
    return out;
}

std::vector<double> max_sensitivity(layers::Layer& model, const Tensor& x, const std::vector<int32_t>& classes,
                                    const Explainer& explainer, const SensitivityOptions& o) {
    GB_CHECK(o.samples >= 1 && o.radius > 0.f, "max-sensitivity: needs samples >= 1 and radius > 0, got ", o.samples,
             " and ", o.radius);
    const Tensor phi0 = explainer(model, x, classes);
    check_maps(x, phi0, classes.size(), "max-sensitivity");
    const int64_t N = x.dim(0), per = phi0.numel() / N;
    // The norms and their ratio are per-sample statistics of final maps: on the host, in double
    // (squares of small or large map values neither underflow nor overflow).
    const auto p0 = phi0.to_vector<float>();
    std::vector<double> norm0(static_cast<size_t>(N), 0.0), out(static_cast<size_t>(N), 0.0);
    for (int64_t i = 0; i < phi0.numel(); ++i) norm0[static_cast<size_t>(i / per)] += double(p0[static_cast<size_t>(i)]) * p0[static_cast<size_t>(i)];
    Generator g(o.seed);
    for (int64_t s = 0; s < o.samples; ++s) {
        // The noise is the generator's sequence (drawn on the host); y = x + noise on x's backend.
        const Tensor noise = uniform(x.shape(), -o.radius, o.radius, g, x.device());
        Tensor y = empty(x.shape(), DType::Float32, x.device());
        kernels::backend_for(x.device()).add(x.numel(), x.data<float>(), noise.data<float>(), y.data<float>());
        const auto p = explainer(model, y, classes).to_vector<float>();
        GB_CHECK(p.size() == p0.size(), "max-sensitivity: the method's map changed shape");
        std::vector<double> d(static_cast<size_t>(N), 0.0);
        for (size_t i = 0; i < p.size(); ++i) {
            const double e = double(p[i]) - p0[i];
            d[i / static_cast<size_t>(per)] += e * e;
        }
        for (int64_t n = 0; n < N; ++n) {
            const size_t k = static_cast<size_t>(n);
            out[k] = std::max(out[k], std::sqrt(d[k]) / std::max(std::sqrt(norm0[k]), 1e-12));
        }
    }
    return out;
}

// A per-sample scalar statistic of final maps, summed on the host in double.
std::vector<double> conservation_error(const Tensor& maps, const std::vector<double>& expected) {
    GB_CHECK(maps.rank() >= 1 && static_cast<int64_t>(expected.size()) == maps.dim(0), "conservation: ",
             expected.size(), " expected totals for maps ", maps.shape().str());
    const int64_t N = maps.dim(0), per = maps.numel() / N;
    const auto v = maps.to_vector<float>();
    std::vector<double> out(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) {
        const double s = std::accumulate(v.begin() + n * per, v.begin() + (n + 1) * per, 0.0);
        const double e = expected[static_cast<size_t>(n)];
        out[static_cast<size_t>(n)] = std::fabs(s - e) / std::max(std::fabs(e), 1e-12);
    }
    return out;
}

}  // namespace gb::explain
