#include "models/soft_tree.h"

#include <cmath>
#include <iomanip>
#include <sstream>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/factory.h"
#include "core/parse.h"
#include "models/checkpoint.h"

namespace gb::models {

namespace {

constexpr const char* kFormat = "glassbox-soft-tree";

const std::string& need(const std::map<std::string, std::string>& meta, const std::string& key,
                        const std::string& source) {
    auto it = meta.find(key);
    GB_CHECK(it != meta.end(), source, ": a soft tree's metadata lacks '", key, "'");
    return it->second;
}

}  // namespace

void SoftTreeConfig::validate() const {
    GB_CHECK(depth >= 1 && depth <= kMaxDepth, "soft tree: depth ", depth, " is outside [1, ", kMaxDepth, "]");
    GB_CHECK(channels >= 1 && height >= 1 && width >= 1 && inputs() <= (int64_t{1} << 24), "soft tree: input ",
             channels, "x", height, "x", width, " is empty or larger than 2^24 values");
    GB_CHECK(classes >= 2 && classes <= 100000, "soft tree: ", classes, " classes (expected 2 ... 100000)");
    GB_CHECK(std::isfinite(beta) && beta > 0.f, "soft tree: inverse temperature beta = ", beta,
             " (expected a finite number > 0)");
}

std::map<std::string, std::string> SoftTreeConfig::to_metadata() const {
    std::ostringstream b;
    b << std::setprecision(9) << beta;
    return {{"soft_tree.depth", std::to_string(depth)},
            {"soft_tree.input", std::to_string(channels) + "," + std::to_string(height) + "," + std::to_string(width)},
            {"soft_tree.classes", std::to_string(classes)},
            {"soft_tree.beta", b.str()}};
}

SoftTreeConfig SoftTreeConfig::from_metadata(const std::map<std::string, std::string>& meta, const std::string& source) {
    SoftTreeConfig c;
    c.depth = parse_int(need(meta, "soft_tree.depth", source), 1, kMaxDepth, source + ": metadata 'soft_tree.depth'");
    const std::vector<double> in =
        parse_numbers(need(meta, "soft_tree.input", source), 1, 1 << 24, source + ": metadata 'soft_tree.input'");
    GB_CHECK(in.size() == 3, source, ": metadata 'soft_tree.input' = '", meta.at("soft_tree.input"),
             "' (expected channels,height,width)");
    for (double v : in)
        GB_CHECK(v == std::floor(v), source, ": metadata 'soft_tree.input' = '", meta.at("soft_tree.input"),
                 "' (expected whole numbers)");
    c.channels = static_cast<int64_t>(in[0]);
    c.height = static_cast<int64_t>(in[1]);
    c.width = static_cast<int64_t>(in[2]);
    c.classes = parse_int(need(meta, "soft_tree.classes", source), 2, 100000, source + ": metadata 'soft_tree.classes'");
    c.beta = static_cast<float>(
        parse_number(need(meta, "soft_tree.beta", source), 1e-30, 1e30, source + ": metadata 'soft_tree.beta'"));
    c.validate();
    return c;
}

SoftTree::SoftTree(const SoftTreeConfig& config, Generator& gen) : cfg_(config) {
    cfg_.validate();
    // The filters start as PyTorch's Linear does (U(-1/sqrt(inputs), 1/sqrt(inputs))); the leaves start
    // uniform (zero logits), so the first steps shape the routing and the leaves together.
    inner_ = std::make_shared<layers::Linear>(cfg_.inputs(), cfg_.inner_nodes(), true, gen);
    add_child("inner", inner_);
    leaf_logits_ = add_parameter("leaf_logits", zeros(Shape{cfg_.leaves(), cfg_.classes}));
}

std::string SoftTree::describe() const {
    std::ostringstream s;
    s << "SoftTree(depth=" << cfg_.depth << ", inputs=" << cfg_.channels << "x" << cfg_.height << "x" << cfg_.width
      << ", classes=" << cfg_.classes << ", beta=" << cfg_.beta << ")";
    return s.str();
}

int64_t SoftTree::node_depth(int64_t node) {
    int64_t d = 0;
    while (node > 0) {
        node = (node - 1) / 2;
        ++d;
    }
    return d;
}

std::vector<std::pair<int64_t, int>> SoftTree::path_to_leaf(int64_t depth, int64_t leaf) {
    GB_CHECK(depth >= 1 && depth <= SoftTreeConfig::kMaxDepth && leaf >= 0 && leaf < (int64_t{1} << depth),
             "soft tree: no leaf ", leaf, " in a tree of depth ", depth);
    std::vector<std::pair<int64_t, int>> path(static_cast<size_t>(depth));
    int64_t node = (int64_t{1} << depth) - 1 + leaf;
    for (int64_t k = depth - 1; k >= 0; --k) {
        const int64_t parent = (node - 1) / 2;
        path[static_cast<size_t>(k)] = {parent, static_cast<int>(node - 2 * parent - 1)};
        node = parent;
    }
    return path;
}

const SoftTree::Constants& SoftTree::constants(Device device) {
    if (consts_.pair.defined() && consts_.device == device) return consts_;
    const int64_t I = cfg_.inner_nodes(), L = cfg_.leaves(), E = 2 * I;
    // Branch e = 2i + d leads from node i to node e + 1, so the branches on the path to node j are
    // j - 1, parent(j) - 1, ... up to the root.
    std::vector<float> anc(static_cast<size_t>(E * E), 0.f), leaf(static_cast<size_t>(E * L), 0.f);
    for (int64_t j = 1; j <= E; ++j)
        for (int64_t n = j; n > 0; n = (n - 1) / 2) anc[static_cast<size_t>((j - 1) * E + (n - 1))] = 1.f;
    for (int64_t l = 0; l < L; ++l)
        for (int64_t e = 0; e < E; ++e)
            leaf[static_cast<size_t>(e * L + l)] = anc[static_cast<size_t>((I + l - 1) * E + e)];
    std::vector<float> w(static_cast<size_t>(I));
    for (int64_t i = 0; i < I; ++i) w[static_cast<size_t>(i)] = std::ldexp(1.f, -static_cast<int>(node_depth(i)));
    consts_.device = device;
    consts_.pair = from_vector(std::vector<float>{0.f, 1.f}, Shape{1, 2}).to(device);
    consts_.ancestors_t = from_vector(anc, Shape{E, E}).to(device);
    consts_.leaf_paths = from_vector(leaf, Shape{E, L}).to(device);
    consts_.depth_weight = from_vector(w, Shape{I}).to(device);
    return consts_;
}

Tensor SoftTree::branch_log_probabilities(const Tensor& x) {
    GB_CHECK(x.dtype() == DType::Float32 && x.rank() >= 2 && x.dim(0) >= 1 && x.numel() / x.dim(0) == cfg_.inputs(),
             "soft tree: expected a batch of ", cfg_.channels, "x", cfg_.height, "x", cfg_.width,
             " float32 inputs ([N, ", cfg_.inputs(), "] or [N, ", cfg_.channels, ", ", cfg_.height, ", ", cfg_.width,
             "]), got ", dtype_name(x.dtype()), " ", x.shape().str());
    const int64_t N = x.dim(0), I = cfg_.inner_nodes();
    const Constants& c = constants(x.device());
    const Tensor rows = x.rank() == 2 ? x : flatten(x);
    const Tensor z = scale((*inner_)(rows), cfg_.beta);  // [N, I]: beta (w_i . x + b_i)
    // log sigmoid(-t) and log sigmoid(t) as log_softmax over the logits (0, t): stable for any t.
    const Tensor logits = matmul(reshape(z, Shape{N * I, 1}), c.pair);  // [N*I, 2] = (0, t)
    return reshape(log_softmax(logits), Shape{N, 2 * I});
}

Tensor SoftTree::leaf_log_probabilities(const Tensor& x) { return (*this)(x); }

Tensor SoftTree::forward(const Tensor& x) {
    const Tensor lq = branch_log_probabilities(x);
    return matmul(lq, constants(x.device()).leaf_paths);  // log P^l = sum of the log branch probabilities on l's path
}

SoftTreeLoss SoftTree::loss(const Tensor& x, const Tensor& targets, float lambda) {
    GB_CHECK(std::isfinite(lambda) && lambda >= 0.f, "soft tree: penalty strength lambda = ", lambda,
             " (expected a finite number >= 0)");
    const int64_t N = x.dim(0), I = cfg_.inner_nodes();
    GB_CHECK(targets.dtype() == DType::Float32 && targets.shape() == Shape({N, cfg_.classes}), "soft tree: targets ",
             targets.shape().str(), " for ", N, " inputs (expected float32 [", N, ", ", cfg_.classes, "])");
    const Constants& c = constants(x.device());
    const Tensor lq = branch_log_probabilities(x);
    const Tensor leaf_lp = matmul(lq, c.leaf_paths);  // [N, L]
    // P^l = exp(log P^l). The path probabilities of a sample sum to 1 over the leaves, so softmax computes
    // exactly that; its backward differs from exp's only along P itself, a direction that the log_softmax
    // of every inner node's (left, right) pair removes again (the gradient check in tests/test_soft_tree.cpp).
    const Tensor P = softmax(leaf_lp);
    const Tensor tlogq = matmul(targets, log_softmax(leaf_logits_), false, true);  // [N, L]: sum_k T_k log Q^l_k
    SoftTreeLoss out;
    out.data = scale(sum(mul(P, tlogq)), -1.f / static_cast<float>(N));
    // Balance penalty (the paper's section 4.1): alpha_i = sum_x P^i(x) p_i(x) / sum_x P^i(x) over the batch, and
    // -(0.5 log alpha_i + 0.5 log(1 - alpha_i)) = log S_i - 0.5 (log S_right(i) + log S_left(i)), where S_j is the
    // batch's total path probability of node j. log S_j is a log-sum-exp over the batch of log P^j(x), taken as the
    // mean of x - log_softmax(x) along a row (every element of which equals the log-sum-exp).
    const Tensor node_t = matmul(c.ancestors_t, lq, false, true);  // [2I, N]: log P^j(x), row j - 1
    auto log_sum_exp_rows = [](const Tensor& t) { return mean(sub(t, log_softmax(t)), 1); };
    const Tensor log_s_child = log_sum_exp_rows(node_t);                                // [2I]
    const Tensor log_s_node = log_sum_exp_rows(reshape(node_t, Shape{I, 2 * N}));       // [I]: both children's rows
    const Tensor children = sum(reshape(log_s_child, Shape{I, 2}), 1);                  // [I]
    const Tensor per_node = sub(log_s_node, scale(children, 0.5f));
    out.penalty = scale(sum(mul(per_node, c.depth_weight)), lambda);
    out.total = add(out.data, out.penalty);
    return out;
}

Tensor SoftTree::leaf_distributions() const {
    autograd::NoGradGuard no_grad;
    return softmax(leaf_logits_).to(Device::cpu());
}

SoftTreePrediction SoftTree::predict(const Tensor& x) {
    autograd::NoGradGuard no_grad;
    const Tensor lq = branch_log_probabilities(x);
    const Tensor leaf_lp = matmul(lq, constants(x.device()).leaf_paths);
    const Tensor P = softmax(leaf_lp);
    const Tensor Q = softmax(leaf_logits_);
    SoftTreePrediction out;
    out.mixture = matmul(P, Q).to(Device::cpu());
    const int64_t N = x.dim(0), L = cfg_.leaves(), K = cfg_.classes, I = cfg_.inner_nodes();
    const std::vector<float> lp = leaf_lp.to_vector<float>(), q = Q.to_vector<float>(), lqv = lq.to_vector<float>();
    out.leaf.resize(static_cast<size_t>(N));
    out.leaf_probability.resize(static_cast<size_t>(N));
    out.label.resize(static_cast<size_t>(N));
    std::vector<float> right(static_cast<size_t>(N * I));
    for (int64_t n = 0; n < N; ++n) {
        const float* row = lp.data() + n * L;
        int64_t best = 0;
        for (int64_t l = 1; l < L; ++l)
            if (row[l] > row[best]) best = l;
        const float* dist = q.data() + best * K;
        int64_t cls = 0;
        for (int64_t k = 1; k < K; ++k)
            if (dist[k] > dist[cls]) cls = k;
        out.leaf[static_cast<size_t>(n)] = static_cast<int32_t>(best);
        out.leaf_probability[static_cast<size_t>(n)] = std::exp(row[best]);
        out.label[static_cast<size_t>(n)] = static_cast<int32_t>(cls);
        for (int64_t i = 0; i < I; ++i)
            right[static_cast<size_t>(n * I + i)] = std::exp(lqv[static_cast<size_t>(n * 2 * I + 2 * i + 1)]);
    }
    out.right = from_vector(right, Shape{N, I});
    return out;
}

void save_soft_tree(const std::string& path, const SoftTree& tree, const std::map<std::string, std::string>& meta) {
    std::map<std::string, std::string> all = tree.config().to_metadata();
    all["format"] = kFormat;
    all["glassbox_version"] = GB_VERSION;
    for (const auto& [k, v] : meta) all.emplace(k, v);
    io::save_safetensors(path, tree.state(), all);
}

bool is_soft_tree(const std::map<std::string, std::string>& meta) {
    auto it = meta.find("format");
    return it != meta.end() && it->second == kFormat;
}

std::shared_ptr<SoftTree> load_soft_tree(const io::SafeTensors& file) {
    GB_CHECK(is_soft_tree(file.metadata), file.source, ": not a soft decision tree (its metadata has no format '",
             kFormat, "'; `glassbox distill` writes such files)");
    Generator gen(0);
    auto tree = std::make_shared<SoftTree>(SoftTreeConfig::from_metadata(file.metadata, file.source), gen);
    load_state(*tree, file);
    tree->eval();
    return tree;
}

std::shared_ptr<SoftTree> load_soft_tree(const std::string& path) { return load_soft_tree(io::load_safetensors(path)); }

}  // namespace gb::models
