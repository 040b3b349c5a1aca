#include "explain/pruning.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/factory.h"
#include "explain/composite.h"
#include "explain/trace.h"
#include "layers/layers.h"

namespace gb::explain {

namespace {

struct Block {
    std::string conv, output;  // the Conv2d's path and the path of the ReLU that ends its block
    layers::Conv2d* layer = nullptr;
};

std::vector<Block> conv_blocks(models::Vgg& model) {
    std::vector<Block> blocks;
    for (const auto& [name, child] : model.features().children()) {
        if (auto* conv = dynamic_cast<layers::Conv2d*>(child.get())) {
            blocks.push_back({"features." + name, "", conv});
        } else if (dynamic_cast<layers::ReLU*>(child.get()) && !blocks.empty() && blocks.back().output.empty()) {
            blocks.back().output = "features." + name;
        }
    }
    for (const Block& b : blocks) GB_CHECK(!b.output.empty(), "prune: ", b.conv, " is not followed by a ReLU");
    return blocks;
}

// Per filter, sum over samples and positions of t [N, K, H, W] (or of t * u).
void add_channel_sums(const Tensor& t, const Tensor* u, std::vector<double>& sums) {
    const Tensor a = t.to(Device::cpu());
    const Tensor b = u ? u->to(Device::cpu()) : Tensor();
    const int64_t n = a.dim(0), k = a.dim(1), area = a.numel() / (n * k);
    const float* pa = a.data<float>();
    const float* pb = u ? b.data<float>() : nullptr;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < k; ++c) {
            const int64_t off = (i * k + c) * area;
            double s = 0;
            for (int64_t p = 0; p < area; ++p) s += pb ? double(pa[off + p]) * pb[off + p] : pa[off + p];
            sums[c] += s;
        }
}

}  // namespace

PruneCriterion parse_prune_criterion(const std::string& name) {
    if (name == "lrp") return PruneCriterion::Lrp;
    if (name == "l1") return PruneCriterion::L1;
    if (name == "taylor") return PruneCriterion::Taylor;
    throw Error("prune: unknown criterion '" + name + "' (known: lrp, l1, taylor)");
}

std::string prune_criterion_name(PruneCriterion c) {
    switch (c) {
        case PruneCriterion::Lrp: return "lrp";
        case PruneCriterion::L1: return "l1";
        case PruneCriterion::Taylor: return "taylor";
    }
    return "";
}

std::vector<std::string> prune_criterion_names() { return {"lrp", "l1", "taylor"}; }

std::vector<FilterScores> filter_scores(models::Vgg& model, PruneCriterion criterion, const Tensor& reference,
                                        const std::vector<int32_t>& labels, int64_t batch) {
    const std::vector<Block> blocks = conv_blocks(model);
    std::vector<FilterScores> out;
    for (const Block& b : blocks)
        out.push_back({b.conv, std::vector<double>(static_cast<size_t>(b.layer->weight().dim(0)), 0.0)});
    if (criterion == PruneCriterion::L1) {
        for (size_t l = 0; l < blocks.size(); ++l) {
            const Tensor w = blocks[l].layer->weight().to(Device::cpu());
            const int64_t k = w.dim(0), per = w.numel() / k;
            const float* p = w.data<float>();
            for (int64_t f = 0; f < k; ++f) {
                double s = 0;
                for (int64_t j = 0; j < per; ++j) s += std::fabs(p[f * per + j]);
                out[l].scores[static_cast<size_t>(f)] = s;
            }
        }
        return out;
    }
    GB_CHECK(reference.defined() && reference.rank() == 4 && reference.dim(0) > 0, "prune: criterion ",
             prune_criterion_name(criterion), " needs reference samples [N, C, H, W]");
    const int64_t n = reference.dim(0);
    GB_CHECK(static_cast<int64_t>(labels.size()) == n, "prune: ", n, " reference samples but ", labels.size(),
             " labels");
    GB_CHECK(batch > 0, "prune: batch must be positive");
    std::vector<std::string> paths;
    for (const Block& b : blocks) paths.push_back(b.output);
    const Composite composite = Composite::preset("epsilon-plus");
    const int64_t classes = model.config().num_classes;
    for (int32_t y : labels) GB_CHECK(y >= 0 && y < classes, "prune: label ", y, " is outside 0..", classes - 1);
    for (int64_t start = 0; start < n; start += batch) {
        const int64_t m = std::min(batch, n - start);
        const Tensor x = reference.narrow(start, m);
        Trace trace(model, x);
        if (criterion == PruneCriterion::Lrp) {
            std::vector<Target> targets;
            for (int64_t i = 0; i < m; ++i) targets.push_back(Target::of(labels[static_cast<size_t>(start + i)]));
            const std::vector<Tensor> r = trace.relevance(composite, trace.seed(targets, /*times_logit=*/true), paths);
            for (size_t l = 0; l < blocks.size(); ++l) add_channel_sums(r[l + 1], nullptr, out[l].scores);
        } else {
            // dC/dlogits of the per-sample cross-entropy: softmax(z) - onehot(y).
            const Tensor z = trace.logits().to(Device::cpu());
            std::vector<float> seed(static_cast<size_t>(m * classes));
            const float* pz = z.data<float>();
            for (int64_t i = 0; i < m; ++i) {
                const float* row = pz + i * classes;
                const float mx = *std::max_element(row, row + classes);
                double sum = 0;
                for (int64_t c = 0; c < classes; ++c) sum += std::exp(double(row[c]) - mx);
                for (int64_t c = 0; c < classes; ++c)
                    seed[static_cast<size_t>(i * classes + c)] =
                        static_cast<float>(std::exp(double(row[c]) - mx) / sum) -
                        (c == labels[static_cast<size_t>(start + i)] ? 1.f : 0.f);
            }
            const Tensor s = from_vector(seed, Shape{m, classes}).to(trace.logits().device());
            const std::vector<Tensor> g = trace.layer_gradients(s, paths);
            for (size_t l = 0; l < blocks.size(); ++l)
                add_channel_sums(trace.layer_output(paths[l]), &g[l], out[l].scores);
        }
    }
    if (criterion == PruneCriterion::Taylor)
        for (auto& f : out)
            for (double& v : f.scores) v = std::fabs(v / static_cast<double>(n));
    return out;
}

std::vector<std::vector<double>> normalized_scores(const std::vector<FilterScores>& scores, PruneCriterion criterion) {
    std::vector<std::vector<double>> out;
    for (const FilterScores& f : scores) {
        double norm = 0;
        for (double v : f.scores) norm += criterion == PruneCriterion::Taylor ? v * v : std::fabs(v);
        if (criterion == PruneCriterion::Taylor) norm = std::sqrt(norm);
        std::vector<double> v = f.scores;
        // A layer whose scores are all zero keeps them (nothing to scale).
        if (norm > 0)
            for (double& x : v) x /= norm;
        out.push_back(std::move(v));
    }
    return out;
}

std::vector<std::vector<int64_t>> filters_to_keep(const std::vector<FilterScores>& scores, PruneCriterion criterion,
                                                  double rate) {
    GB_CHECK(rate > 0 && rate < 1, "prune: the rate must be inside (0, 1), got ", rate);
    const auto norm = normalized_scores(scores, criterion);
    struct Entry {
        double score;
        size_t layer;
        int64_t filter;
    };
    std::vector<Entry> all;
    for (size_t l = 0; l < norm.size(); ++l)
        for (size_t f = 0; f < norm[l].size(); ++f) all.push_back({norm[l][f], l, static_cast<int64_t>(f)});
    const int64_t total = static_cast<int64_t>(all.size());
    const int64_t remove = static_cast<int64_t>(std::llround(rate * static_cast<double>(total)));
    const int64_t can = total - static_cast<int64_t>(norm.size());
    GB_CHECK(remove <= can, "prune: rate ", rate, " removes ", remove, " of ", total, " filters, but at most ", can,
             " can go (every layer keeps one)");
    std::stable_sort(all.begin(), all.end(), [](const Entry& a, const Entry& b) { return a.score < b.score; });
    std::vector<int64_t> left;
    for (const auto& l : norm) left.push_back(static_cast<int64_t>(l.size()));
    std::vector<std::vector<bool>> gone(norm.size());
    for (size_t l = 0; l < norm.size(); ++l) gone[l].assign(norm[l].size(), false);
    int64_t removed = 0;
    for (const Entry& e : all) {
        if (removed == remove) break;
        if (left[e.layer] == 1) continue;  // the layer's best filter stays
        gone[e.layer][static_cast<size_t>(e.filter)] = true;
        --left[e.layer];
        ++removed;
    }
    std::vector<std::vector<int64_t>> keep(norm.size());
    for (size_t l = 0; l < norm.size(); ++l)
        for (size_t f = 0; f < norm[l].size(); ++f)
            if (!gone[l][f]) keep[l].push_back(static_cast<int64_t>(f));
    return keep;
}

std::vector<int64_t> reference_indices(const io::Dataset& data, int64_t per_class) {
    GB_CHECK(per_class > 0, "prune: --reference-per-class must be positive, got ", per_class);
    const int64_t classes = data.classes();
    std::vector<int64_t> count(static_cast<size_t>(classes), 0), out;
    const Tensor labels = data.labels.to(Device::cpu());
    const int32_t* y = labels.data<int32_t>();
    for (int64_t i = 0; i < data.size() && static_cast<int64_t>(out.size()) < per_class * classes; ++i)
        if (count[static_cast<size_t>(y[i])] < per_class) {
            ++count[static_cast<size_t>(y[i])];
            out.push_back(i);
        }
    for (int64_t c = 0; c < classes; ++c)
        GB_CHECK(count[static_cast<size_t>(c)] == per_class, "prune: ", data.name, " has only ",
                 count[static_cast<size_t>(c)], " samples of class ", c, "; asked for ", per_class, " per class");
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace gb::explain
