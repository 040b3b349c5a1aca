#include "models/cart.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/factory.h"
#include "core/parallel.h"
#include "core/parse.h"

namespace gb::models {

namespace {

constexpr const char* kFormat = "glassbox-cart-tree";

// The best split of one node over one feature: score = sum_k c_Lk^2 / n_L + sum_k c_Rk^2 / n_R.
struct Split {
    double score = -1;  // < 0: none
    int32_t feature = -1;
    float threshold = 0;
};

// A threshold between two consecutive distinct values lo < hi that separates them as floats.
float midpoint(float lo, float hi) {
    const float t = static_cast<float>((static_cast<double>(lo) + static_cast<double>(hi)) / 2);
    return t >= hi ? lo : t;
}

}  // namespace

int64_t CartTree::leaves() const { return std::count(feature.begin(), feature.end(), -1); }

int64_t CartTree::max_depth() const { return depth.empty() ? 0 : *std::max_element(depth.begin(), depth.end()); }

int32_t CartTree::leaf_of(const float* row) const {
    int32_t node = 0;
    while (feature[static_cast<size_t>(node)] >= 0)
        node = row[feature[static_cast<size_t>(node)]] <= threshold[static_cast<size_t>(node)]
                   ? left[static_cast<size_t>(node)]
                   : right[static_cast<size_t>(node)];
    return node;
}

int32_t CartTree::predict(const float* row) const {
    const float* d = distribution.data() + static_cast<int64_t>(leaf_of(row)) * classes;
    return static_cast<int32_t>(std::max_element(d, d + classes) - d);
}

std::vector<int32_t> CartTree::predict(const float* rows, int64_t n) const {
    std::vector<int32_t> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = predict(rows + i * features);
    return out;
}

CartTree fit_cart(const float* x, int64_t n, int64_t F, const int32_t* labels, int64_t K, const CartOptions& options) {
    GB_CHECK(n >= 1 && F >= 1 && K >= 2, "CART: needs samples, features and two classes or more (got ", n, " x ", F,
             ", ", K, " classes)");
    GB_CHECK(options.max_depth >= 1 && options.max_depth <= 30, "CART: max depth ", options.max_depth,
             " is outside [1, 30]");
    for (int64_t i = 0; i < n; ++i)
        GB_CHECK(labels[i] >= 0 && labels[i] < K, "CART: label ", labels[i], " of sample ", i, " is outside [0, ", K,
                 ")");
    for (int64_t i = 0; i < n * F; ++i)
        GB_CHECK(std::isfinite(x[i]), "CART: value ", i % F, " of sample ", i / F, " is not finite");

    // Every feature's samples in increasing order of its value (ties by index).
    std::vector<int32_t> order(static_cast<size_t>(n * F));
    parallel_for(0, F, 1, [&](int64_t f0, int64_t f1) {
        for (int64_t f = f0; f < f1; ++f) {
            int32_t* o = order.data() + f * n;
            std::iota(o, o + n, 0);
            std::stable_sort(o, o + n, [&](int32_t a, int32_t b) { return x[a * F + f] < x[b * F + f]; });
        }
    });

    CartTree t;
    t.features = F;
    t.classes = K;
    auto add_node = [&](int32_t d, const std::vector<int64_t>& counts, int64_t total) {
        t.feature.push_back(-1);
        t.left.push_back(-1);
        t.right.push_back(-1);
        t.depth.push_back(d);
        t.threshold.push_back(0.f);
        for (int64_t k = 0; k < K; ++k)
            t.distribution.push_back(static_cast<float>(static_cast<double>(counts[static_cast<size_t>(k)]) / total));
        return static_cast<int32_t>(t.feature.size() - 1);
    };

    std::vector<int32_t> slot(static_cast<size_t>(n), 0);  // each sample's node among the level's open ones, -1: done
    std::vector<int32_t> open{0};                          // node ids of the level's open nodes
    std::vector<int64_t> counts(static_cast<size_t>(K), 0);
    for (int64_t i = 0; i < n; ++i) ++counts[static_cast<size_t>(labels[i])];
    add_node(0, counts, n);
    std::vector<std::vector<int64_t>> open_counts{counts};

    for (int64_t level = 0; level < options.max_depth && !open.empty(); ++level) {
        const int64_t A = static_cast<int64_t>(open.size());
        std::vector<int64_t> size(static_cast<size_t>(A));
        std::vector<double> total_sq(static_cast<size_t>(A));
        std::vector<char> splittable(static_cast<size_t>(A));
        for (int64_t a = 0; a < A; ++a) {
            const auto& c = open_counts[static_cast<size_t>(a)];
            size[static_cast<size_t>(a)] = std::accumulate(c.begin(), c.end(), int64_t{0});
            double sq = 0;
            int nonzero = 0;
            for (int64_t v : c) {
                sq += static_cast<double>(v) * static_cast<double>(v);
                nonzero += v > 0;
            }
            total_sq[static_cast<size_t>(a)] = sq;
            splittable[static_cast<size_t>(a)] = size[static_cast<size_t>(a)] >= 2 && nonzero >= 2;
        }
        // best[f * A + a]: node a's best split on feature f; features run in parallel, each with its own sums.
        std::vector<Split> best(static_cast<size_t>(F * A));
        parallel_for(0, F, 8, [&](int64_t f0, int64_t f1) {
            std::vector<int64_t> lc(static_cast<size_t>(A * K));
            std::vector<int64_t> nl(static_cast<size_t>(A));
            std::vector<double> sql(static_cast<size_t>(A)), sqr(static_cast<size_t>(A));
            std::vector<float> last(static_cast<size_t>(A));
            for (int64_t f = f0; f < f1; ++f) {
                std::fill(lc.begin(), lc.end(), 0);
                std::fill(nl.begin(), nl.end(), 0);
                std::fill(sql.begin(), sql.end(), 0.0);
                sqr = total_sq;
                const int32_t* o = order.data() + f * n;
                Split* b = best.data() + f * A;
                for (int64_t r = 0; r < n; ++r) {
                    const int32_t s = o[r];
                    const int32_t a = slot[static_cast<size_t>(s)];
                    if (a < 0 || !splittable[static_cast<size_t>(a)]) continue;
                    const float v = x[static_cast<int64_t>(s) * F + f];
                    const int64_t left_n = nl[static_cast<size_t>(a)], right_n = size[static_cast<size_t>(a)] - left_n;
                    if (left_n > 0 && v > last[static_cast<size_t>(a)]) {
                        const double score = sql[static_cast<size_t>(a)] / static_cast<double>(left_n) +
                                             sqr[static_cast<size_t>(a)] / static_cast<double>(right_n);
                        if (score > b[a].score) b[a] = {score, static_cast<int32_t>(f), midpoint(last[static_cast<size_t>(a)], v)};
                    }
                    // Sample s moves from the right side to the left: (c + 1)^2 - c^2 = 2c + 1.
                    const int64_t k = labels[s];
                    int64_t& c = lc[static_cast<size_t>(a * K + k)];
                    const int64_t cr = open_counts[static_cast<size_t>(a)][static_cast<size_t>(k)] - c;
                    sql[static_cast<size_t>(a)] += 2.0 * static_cast<double>(c) + 1.0;
                    sqr[static_cast<size_t>(a)] -= 2.0 * static_cast<double>(cr) - 1.0;
                    ++c;
                    ++nl[static_cast<size_t>(a)];
                    last[static_cast<size_t>(a)] = v;
                }
            }
        });
        // Each node's best over the features in order (the first of equal scores wins), then the children.
        std::vector<int32_t> next_open;
        std::vector<std::vector<int64_t>> next_counts;
        std::vector<int32_t> child_slot(static_cast<size_t>(2 * A), -1);
        std::vector<Split> chosen(static_cast<size_t>(A));
        for (int64_t a = 0; a < A; ++a) {
            for (int64_t f = 0; f < F; ++f)
                if (best[static_cast<size_t>(f * A + a)].score > chosen[static_cast<size_t>(a)].score)
                    chosen[static_cast<size_t>(a)] = best[static_cast<size_t>(f * A + a)];
        }
        // Class counts of each side, from the samples themselves.
        std::vector<std::vector<int64_t>> side(static_cast<size_t>(2 * A), std::vector<int64_t>(static_cast<size_t>(K), 0));
        for (int64_t i = 0; i < n; ++i) {
            const int32_t a = slot[static_cast<size_t>(i)];
            if (a < 0 || chosen[static_cast<size_t>(a)].feature < 0) continue;
            const Split& s = chosen[static_cast<size_t>(a)];
            const int go_right = x[i * F + s.feature] <= s.threshold ? 0 : 1;
            ++side[static_cast<size_t>(2 * a + go_right)][static_cast<size_t>(labels[i])];
        }
        for (int64_t a = 0; a < A; ++a) {
            const Split& s = chosen[static_cast<size_t>(a)];
            if (s.feature < 0) continue;
            const int32_t node = open[static_cast<size_t>(a)];
            t.feature[static_cast<size_t>(node)] = s.feature;
            t.threshold[static_cast<size_t>(node)] = s.threshold;
            for (int d = 0; d < 2; ++d) {
                const auto& c = side[static_cast<size_t>(2 * a + d)];
                const int64_t total = std::accumulate(c.begin(), c.end(), int64_t{0});
                const int32_t child = add_node(static_cast<int32_t>(level + 1), c, total);
                (d == 0 ? t.left : t.right)[static_cast<size_t>(node)] = child;
                child_slot[static_cast<size_t>(2 * a + d)] = static_cast<int32_t>(next_open.size());
                next_open.push_back(child);
                next_counts.push_back(c);
            }
        }
        for (int64_t i = 0; i < n; ++i) {
            int32_t& a = slot[static_cast<size_t>(i)];
            if (a < 0) continue;
            const Split& s = chosen[static_cast<size_t>(a)];
            a = s.feature < 0 ? -1 : child_slot[static_cast<size_t>(2 * a + (x[i * F + s.feature] <= s.threshold ? 0 : 1))];
        }
        open = std::move(next_open);
        open_counts = std::move(next_counts);
        if (options.on_level) options.on_level(level + 1, options.max_depth, t.nodes());
    }
    return t;
}

void save_cart(const std::string& path, const CartTree& t, const std::map<std::string, std::string>& meta) {
    const int64_t m = t.nodes();
    std::map<std::string, std::string> all = meta;
    all["format"] = kFormat;
    all["glassbox_version"] = GB_VERSION;
    all["cart.features"] = std::to_string(t.features);
    all["cart.classes"] = std::to_string(t.classes);
    io::save_safetensors(path,
                         {{"feature", from_vector(t.feature, Shape{m})},
                          {"threshold", from_vector(t.threshold, Shape{m})},
                          {"left", from_vector(t.left, Shape{m})},
                          {"right", from_vector(t.right, Shape{m})},
                          {"depth", from_vector(t.depth, Shape{m})},
                          {"distribution", from_vector(t.distribution, Shape{m, t.classes})}},
                         all);
}

bool is_cart(const std::map<std::string, std::string>& meta) {
    auto it = meta.find("format");
    return it != meta.end() && it->second == kFormat;
}

CartTree load_cart(const io::SafeTensors& file) {
    const std::string& src = file.source;
    GB_CHECK(is_cart(file.metadata), src, ": not a CART tree (no format '", kFormat, "' in its metadata)");
    auto ints = [&](const char* name) {
        const Tensor& v = file.at(name);
        GB_CHECK(v.dtype() == DType::Int32 && v.rank() == 1, src, ": '", name, "' must be int32 [nodes], got ",
                 dtype_name(v.dtype()), " ", v.shape().str());
        return v.to_vector<int32_t>();
    };
    CartTree t;
    t.feature = ints("feature");
    t.left = ints("left");
    t.right = ints("right");
    t.depth = ints("depth");
    const int64_t m = t.nodes();
    const Tensor& th = file.at("threshold");
    const Tensor& di = file.at("distribution");
    GB_CHECK(m >= 1 && th.dtype() == DType::Float32 && th.shape() == Shape{m} && di.dtype() == DType::Float32 &&
                 di.rank() == 2 && di.dim(0) == m && di.dim(1) >= 2 &&
                 static_cast<int64_t>(t.left.size()) == m && static_cast<int64_t>(t.right.size()) == m &&
                 static_cast<int64_t>(t.depth.size()) == m,
             src, ": the node arrays disagree in size (feature ", m, ", threshold ", th.shape().str(),
             ", distribution ", di.shape().str(), ")");
    t.threshold = th.to_vector<float>();
    t.distribution = di.to_vector<float>();
    t.classes = di.dim(1);
    t.features = 0;
    for (int64_t i = 0; i < m; ++i) {
        const int32_t f = t.feature[static_cast<size_t>(i)], l = t.left[static_cast<size_t>(i)],
                      r = t.right[static_cast<size_t>(i)];
        // Children come after their parent, so every walk from the root ends at a leaf.
        GB_CHECK(f < 0 ? (l == -1 && r == -1) : (l > i && l < m && r > i && r < m && std::isfinite(t.threshold[static_cast<size_t>(i)])),
                 src, ": node ", i, " is malformed (feature ", f, ", children ", l, " and ", r, ")");
        t.features = std::max<int64_t>(t.features, f + 1);
    }
    auto it = file.metadata.find("cart.features");
    if (it != file.metadata.end())
        t.features = std::max<int64_t>(t.features, parse_int(it->second, 1, int64_t{1} << 24, src + ": metadata 'cart.features'"));
    return t;
}

}  // namespace gb::models
