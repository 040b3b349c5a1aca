#include "explain/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/factory.h"
#include "explain/perturbation.h"

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

// Per sample, the map summed over its channels: [N][H * W].
std::vector<std::vector<float>> channel_sums(const Tensor& maps) {
    const int64_t N = maps.dim(0), C = maps.dim(1), HW = maps.dim(2) * maps.dim(3);
    const auto v = maps.to_vector<float>();
    std::vector<std::vector<float>> out(static_cast<size_t>(N), std::vector<float>(static_cast<size_t>(HW), 0.f));
    for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < HW; ++i)
                out[static_cast<size_t>(n)][static_cast<size_t>(i)] += v[static_cast<size_t>((n * C + c) * HW + i)];
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

std::vector<float> gaussian_blur(const std::vector<float>& x, int64_t planes, int64_t H, int64_t W, float sigma) {
    // Sigma beyond kMaxBlurSigma would need a kernel of millions of taps (and a
    // blur that wide is a flat image anyway): refused rather than allocated.
    GB_CHECK(sigma > 0.f && sigma <= kMaxBlurSigma, "blur: sigma must be in (0, ", kMaxBlurSigma, "] pixels, got ", sigma);
    const int64_t r = static_cast<int64_t>(std::ceil(3.f * sigma));
    std::vector<double> k(static_cast<size_t>(2 * r + 1));
    double ks = 0;
    for (int64_t i = -r; i <= r; ++i) ks += k[static_cast<size_t>(i + r)] = std::exp(-0.5 * double(i * i) / (sigma * sigma));
    for (auto& v : k) v /= ks;
    std::vector<float> tmp(x.size()), out(x.size());
    for (int64_t p = 0; p < planes; ++p)
        for (int64_t y = 0; y < H; ++y)
            for (int64_t xx = 0; xx < W; ++xx) {
                double s = 0;
                for (int64_t i = -r; i <= r; ++i)
                    s += k[static_cast<size_t>(i + r)] * x[static_cast<size_t>((p * H + y) * W + std::clamp<int64_t>(xx + i, 0, W - 1))];
                tmp[static_cast<size_t>((p * H + y) * W + xx)] = static_cast<float>(s);
            }
    for (int64_t p = 0; p < planes; ++p)
        for (int64_t y = 0; y < H; ++y)
            for (int64_t xx = 0; xx < W; ++xx) {
                double s = 0;
                for (int64_t i = -r; i <= r; ++i)
                    s += k[static_cast<size_t>(i + r)] * tmp[static_cast<size_t>((p * H + std::clamp<int64_t>(y + i, 0, H - 1)) * W + xx)];
                out[static_cast<size_t>((p * H + y) * W + xx)] = static_cast<float>(s);
            }
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
    std::vector<float> v = x.to_vector<float>();
    switch (o.replacement) {
        case Replacement::Value: std::fill(v.begin(), v.end(), o.value); break;
        case Replacement::Noise: {
            GB_CHECK(o.noise_low < o.noise_high, "noise replacement: low ", o.noise_low, " must be below high ", o.noise_high);
            Generator g(o.seed);
            for (auto& a : v) a = g.uniform(o.noise_low, o.noise_high);
            break;
        }
        case Replacement::Mean:
            for (int64_t p = 0; p < N * C; ++p) {
                const auto b = v.begin() + p * HW;
                const double m = std::accumulate(b, b + HW, 0.0) / static_cast<double>(HW);
                std::fill(b, b + HW, static_cast<float>(m));
            }
            break;
        case Replacement::Blur: v = gaussian_blur(v, N * C, H, W, o.blur_sigma); break;
    }
    return from_vector(v, x.shape(), x.device());
}

Curves perturbation_curves(layers::Layer& model, const Tensor& x, const Tensor& maps, const std::vector<int32_t>& classes,
                           const PerturbationOptions& o, const Tensor& x_logits) {
    check_maps(x, maps, classes.size(), "perturbation curves");
    GB_CHECK(o.steps >= 1 && o.units_per_step >= 0 && o.batch > 0, "perturbation curves: steps must be >= 1 (got ",
             o.steps, "), units_per_step >= 0 (got ", o.units_per_step, ")");
    const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), per = C * H * W;
    const int64_t p = o.patch, gx = (W + p - 1) / p, units = ((H + p - 1) / p) * gx;
    const int64_t step = o.units_per_step > 0 ? o.units_per_step : (units + o.steps - 1) / o.steps;
    Curves c;
    c.samples = N;
    c.points = o.steps + 1;
    for (int64_t k = 0; k <= o.steps; ++k)
        c.fraction.push_back(static_cast<double>(std::min(units, k * step)) / static_cast<double>(units));
    c.values.resize(static_cast<size_t>(N * c.points));
    const auto xv = x.to_vector<float>();
    const auto rv = replacement_image(x, o).to_vector<float>();
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
    Perturbations pert;
    pert.input = Shape{C, H, W};
    pert.device = x.device();
    pert.count = static_cast<int64_t>(rows.size());
    pert.batch = o.batch;
    pert.fill = [&](int64_t i, float* dst) {
        const int64_t row = rows[static_cast<size_t>(i)];
        const int64_t n = row / c.points, k = row % c.points, m = std::min(units, k * step);
        const auto& from = o.insertion ? rv : xv;  // the image we start from
        const auto& put = o.insertion ? xv : rv;   // what the first m units become
        std::copy(from.begin() + n * per, from.begin() + (n + 1) * per, dst);
        for (int64_t u = 0; u < m; ++u) {
            const int64_t unit = order[static_cast<size_t>(n)][static_cast<size_t>(u)];
            const int64_t y0 = (unit / gx) * p, x0 = (unit % gx) * p;
            for (int64_t ch = 0; ch < C; ++ch)
                for (int64_t y = y0; y < std::min(H, y0 + p); ++y) {
                    const int64_t at = n * per + (ch * H + y) * W;
                    std::copy(put.begin() + at + x0, put.begin() + at + std::min(W, x0 + p), dst + (ch * H + y) * W + x0);
                }
        }
    };
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
        for (int64_t n = 0; n < N; ++n) {
            const auto& a = ref[static_cast<size_t>(n)];
            const auto& b = maps[static_cast<size_t>(n)];
            s.spearman += spearman(a, b) / static_cast<double>(N);
            std::vector<float> aa(a.size()), ab(b.size());
            std::transform(a.begin(), a.end(), aa.begin(), [](float v) { return std::fabs(v); });
            std::transform(b.begin(), b.end(), ab.begin(), [](float v) { return std::fabs(v); });
            s.spearman_abs += spearman(aa, ab) / static_cast<double>(N);
            s.ssim += ssim(abs_scaled(a), abs_scaled(b), H, W) / static_cast<double>(N);
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
    const auto p0 = phi0.to_vector<float>();
    std::vector<double> norm0(static_cast<size_t>(N), 0.0), out(static_cast<size_t>(N), 0.0);
    for (int64_t i = 0; i < phi0.numel(); ++i) norm0[static_cast<size_t>(i / per)] += double(p0[static_cast<size_t>(i)]) * p0[static_cast<size_t>(i)];
    Generator g(o.seed);
    const auto xv = x.to_vector<float>();
    for (int64_t s = 0; s < o.samples; ++s) {
        std::vector<float> y(xv.size());
        for (size_t i = 0; i < y.size(); ++i) y[i] = xv[i] + g.uniform(-o.radius, o.radius);
        const auto p = explainer(model, from_vector(y, x.shape(), x.device()), classes).to_vector<float>();
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
