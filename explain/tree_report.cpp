#include "explain/tree_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "explain/plot.h"
#include "io/file_util.h"

namespace gb::explain {

namespace {

std::string pct(double v) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(2) << 100 * v << "%";
    return s.str();
}

std::string num(double v, int digits) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(digits) << v;
    return s.str();
}

std::string png_uri(const Image& image) { return "data:image/png;base64," + base64_encode(encode_png(image)); }

std::string hex(Rgb8 c) {
    std::ostringstream s;
    s << "#" << std::hex << std::setfill('0') << std::setw(2) << int(c.r) << std::setw(2) << int(c.g) << std::setw(2)
      << int(c.b);
    return s.str();
}

std::string class_name(const std::vector<std::string>& names, int64_t k) {
    return k < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(k)] : std::to_string(k);
}

// K bars of a distribution inside the box (x, y, w, h), tallest = h, one colour per class.
void bars(std::ostringstream& out, const float* dist, int64_t K, double x, double y, double w, double h) {
    const double bw = w / static_cast<double>(K);
    for (int64_t k = 0; k < K; ++k) {
        const double bh = std::max(0.0, static_cast<double>(dist[k])) * h;
        out << "<rect x=\"" << num(x + bw * static_cast<double>(k), 1) << "\" y=\"" << num(y + h - bh, 1)
            << "\" width=\"" << num(std::max(1.0, bw - 0.5), 1) << "\" height=\"" << num(bh, 1) << "\" fill=\""
            << hex(series_color(static_cast<size_t>(k))) << "\"/>";
    }
    out << "<rect x=\"" << num(x, 1) << "\" y=\"" << num(y, 1) << "\" width=\"" << num(w, 1) << "\" height=\""
        << num(h, 1) << "\" fill=\"none\" stroke=\"#d1d5db\" stroke-width=\"0.5\"/>";
}

std::string distribution_text(const float* dist, int64_t K, const std::vector<std::string>& names) {
    std::ostringstream s;
    for (int64_t k = 0; k < K; ++k) s << (k ? ", " : "") << class_name(names, k) << " " << pct(dist[k]);
    return s.str();
}

int64_t arg_max(const float* v, int64_t n) { return std::max_element(v, v + n) - v; }

void legend(std::ostringstream& out, const std::vector<std::string>& names, int64_t K, double x, double y) {
    double cx = x;
    for (int64_t k = 0; k < K; ++k) {
        const std::string name = class_name(names, k);
        out << "<rect x=\"" << num(cx, 1) << "\" y=\"" << num(y, 1) << "\" width=\"10\" height=\"10\" fill=\""
            << hex(series_color(static_cast<size_t>(k))) << "\"/><text x=\"" << num(cx + 13, 1) << "\" y=\""
            << num(y + 9, 1) << "\">" << html_escape(name) << "</text>";
        cx += 24 + 6.5 * static_cast<double>(name.size());
    }
}

}  // namespace

Image filter_image(const models::SoftTree& tree, int64_t node) {
    const models::SoftTreeConfig& c = tree.config();
    GB_CHECK(node >= 0 && node < c.inner_nodes(), "filter_image: no inner node ", node, " (the tree has ",
             c.inner_nodes(), ")");
    const Tensor weight = tree.inner().weight().to(Device::cpu());
    const Tensor row = weight.narrow(node, 1).clone().view(Shape{c.channels, c.height, c.width});
    return render_heatmap(row, "bwr", /*signed_map=*/true);
}

std::string tree_svg(const models::SoftTree& tree, const std::vector<std::string>& names, int64_t levels) {
    const models::SoftTreeConfig& c = tree.config();
    const int64_t D = c.depth, K = c.classes, shown = std::clamp<int64_t>(levels, 1, D);
    const int64_t bottom = int64_t{1} << shown;
    const double cw = 76, s = 56, rh = 96, top = 22;
    const double W = std::max(cw * static_cast<double>(bottom), 640.0);
    const double bottom_y = top + rh * static_cast<double>(shown);
    const double H = bottom_y + 96 + 24;
    const Tensor Q = tree.leaf_distributions();
    const std::vector<float> q = Q.to_vector<float>();
    std::ostringstream out;
    out << "<div style=\"overflow-x: auto\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(W, 0)
        << "\" height=\"" << num(H, 0) << "\" font-family=\"sans-serif\" font-size=\"10\">";
    auto node_x = [&](int64_t d, int64_t k) { return (static_cast<double>(k) + 0.5) * W / static_cast<double>(int64_t{1} << d); };
    // Edges first, under the pictures.
    for (int64_t d = 0; d < shown; ++d)
        for (int64_t k = 0; k < (int64_t{1} << d); ++k)
            for (int dir = 0; dir < 2; ++dir) {
                const double x0 = node_x(d, k), y0 = top + rh * static_cast<double>(d) + s;
                const double x1 = node_x(d + 1, 2 * k + dir), y1 = top + rh * static_cast<double>(d + 1) - 2;
                out << "<line x1=\"" << num(x0, 1) << "\" y1=\"" << num(y0, 1) << "\" x2=\"" << num(x1, 1) << "\" y2=\""
                    << num(y1, 1) << "\" stroke=\"" << (dir ? "#2563eb" : "#9ca3af") << "\" stroke-width=\"1.2\"/>";
                out << "<text x=\"" << num(x0 + (x1 - x0) * 0.3 + (dir ? 4 : -10), 1) << "\" y=\""
                    << num(y0 + (y1 - y0) * 0.3, 1) << "\" fill=\"#6b7280\">" << (dir ? "R" : "L") << "</text>";
            }
    for (int64_t d = 0; d < shown; ++d)
        for (int64_t k = 0; k < (int64_t{1} << d); ++k) {
            const int64_t node = (int64_t{1} << d) - 1 + k;
            const double x = node_x(d, k) - s / 2, y = top + rh * static_cast<double>(d);
            out << "<image x=\"" << num(x, 1) << "\" y=\"" << num(y, 1) << "\" width=\"" << num(s, 0) << "\" height=\""
                << num(s, 0) << "\" style=\"image-rendering: pixelated\" href=\"" << png_uri(filter_image(tree, node))
                << "\"><title>node " << node << ": filter w (blue negative, red positive)</title></image>";
            out << "<text x=\"" << num(x, 1) << "\" y=\"" << num(y - 3, 1) << "\">node " << node << "</text>";
        }
    // The bottom row: leaves, or each subtree's mean leaf distribution.
    const int64_t per = int64_t{1} << (D - shown);
    std::vector<float> mean(static_cast<size_t>(K));
    for (int64_t b = 0; b < bottom; ++b) {
        std::fill(mean.begin(), mean.end(), 0.f);
        for (int64_t l = b * per; l < (b + 1) * per; ++l)
            for (int64_t k = 0; k < K; ++k)
                mean[static_cast<size_t>(k)] += q[static_cast<size_t>(l * K + k)] / static_cast<float>(per);
        const double x = node_x(shown, b) - (cw - 10) / 2;
        out << "<g><title>" << (per == 1 ? "leaf " + std::to_string(b) : "subtree of node " + std::to_string(bottom - 1 + b))
            << ": " << html_escape(distribution_text(mean.data(), K, names)) << "</title>";
        bars(out, mean.data(), K, x, bottom_y, cw - 10, 56);
        out << "</g><text x=\"" << num(x, 1) << "\" y=\"" << num(bottom_y + 68, 1) << "\">"
            << (per == 1 ? "leaf " + std::to_string(b) : std::to_string(per) + " leaves") << "</text>";
        out << "<text x=\"" << num(x, 1) << "\" y=\"" << num(bottom_y + 80, 1) << "\" font-weight=\"bold\">"
            << html_escape(class_name(names, arg_max(mean.data(), K)).substr(0, 11)) << "</text>";
    }
    legend(out, names, K, 4, H - 16);
    out << "</svg></div>\n";
    return out.str();
}

namespace {

// Every filter (breadth first) and every leaf, `per_row` to a row: cells of 28 pixels.
std::string grids_svg(const models::SoftTree& tree, const std::vector<std::string>& names) {
    const models::SoftTreeConfig& c = tree.config();
    const int64_t I = c.inner_nodes(), L = c.leaves(), K = c.classes, per_row = 32;
    const double cell = 30, label = 34;
    const int64_t frows = (I + per_row - 1) / per_row, lrows = (L + per_row - 1) / per_row;
    const double W = label + cell * per_row, fh = cell * static_cast<double>(frows),
                 H = 16 + fh + 24 + cell * static_cast<double>(lrows);
    const std::vector<float> q = tree.leaf_distributions().to_vector<float>();
    std::ostringstream out;
    out << "<div style=\"overflow-x: auto\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(W, 0)
        << "\" height=\"" << num(H, 0) << "\" font-family=\"sans-serif\" font-size=\"9\">";
    out << "<text x=\"0\" y=\"11\" font-size=\"11\">inner nodes (filters), breadth first; a row starts at the node "
           "on its left</text>";
    for (int64_t i = 0; i < I; ++i) {
        const double x = label + cell * static_cast<double>(i % per_row), y = 16 + cell * static_cast<double>(i / per_row);
        if (i % per_row == 0) out << "<text x=\"0\" y=\"" << num(y + 17, 1) << "\">" << i << "</text>";
        out << "<image x=\"" << num(x, 1) << "\" y=\"" << num(y, 1) << "\" width=\"28\" height=\"28\" "
            << "style=\"image-rendering: pixelated\" href=\"" << png_uri(filter_image(tree, i)) << "\"><title>node " << i
            << " (depth " << models::SoftTree::node_depth(i) << ")</title></image>";
    }
    const double ly = 16 + fh + 8;
    out << "<text x=\"0\" y=\"" << num(ly + 11, 1) << "\" font-size=\"11\">leaves: class distributions</text>";
    for (int64_t l = 0; l < L; ++l) {
        const double x = label + cell * static_cast<double>(l % per_row), y = ly + 16 + cell * static_cast<double>(l / per_row);
        if (l % per_row == 0) out << "<text x=\"0\" y=\"" << num(y + 17, 1) << "\">" << l << "</text>";
        const float* d = q.data() + l * K;
        out << "<g><title>leaf " << l << ": " << html_escape(distribution_text(d, K, names)) << "</title>";
        bars(out, d, K, x, y, 28, 26);
        out << "</g>";
    }
    out << "</svg></div>\n";
    return out.str();
}

}  // namespace

std::string history_svg(const train::DistillResult& r) {
    GB_CHECK(!r.history.empty(), "distill: no training history to plot");
    LinePlot plot{"soft tree on the test split", "epoch", "%", {{"test accuracy", {}, {}}, {"fidelity", {}, {}}}};
    for (const train::DistillEpoch& e : r.history)
        for (int k = 0; k < 2; ++k) {
            plot.series[static_cast<size_t>(k)].x.push_back(static_cast<double>(e.epoch));
            plot.series[static_cast<size_t>(k)].y.push_back(100 * (k ? e.fidelity : e.test_accuracy));
        }
    return render_line_plot_svg(plot, 720, 360);
}

Report tree_report(const train::DistillConfig& c, const train::DistillResult& r, const TreeReportOptions& o) {
    const models::SoftTree& tree = *r.tree;
    const models::SoftTreeConfig& tc = tree.config();
    const std::vector<std::string>& names = r.test.class_names;
    Report rep;
    rep.title = "Soft decision tree distilled from " + std::filesystem::path(c.checkpoint).filename().string();
    rep.info = {{"Teacher", c.checkpoint},
                {"Data", c.data + ": " + std::to_string(r.train_images) + " training, " + std::to_string(r.test.size()) +
                             " test images"},
                {"Tree", "depth " + std::to_string(tc.depth) + ": " + std::to_string(tc.inner_nodes()) +
                             " filters, " + std::to_string(tc.leaves()) + " leaves; beta " + num(tc.beta, 3)},
                {"Targets", c.targets == "soft" ? "the teacher's softmax at temperature " + num(c.temperature, 2)
                                                : "the labels (one-hot)"},
                {"Training", std::to_string(c.epochs) + " epochs of Adam, lr " + num(c.lr, 4) +
                                 " (cosine), batch " + std::to_string(c.batch_size) + ", lambda " + num(c.lambda, 4) +
                                 ", seed " + std::to_string(c.seed)},
                {"Inputs", r.mean.empty() ? "raw [0, 1] pixels" : "normalised as the teacher's checkpoint records"}};
    rep.signed_colormap = "bwr";
    rep.sequential_colormap = "";

    ReportSection scores;
    scores.title = "Scores on the test split";
    scores.text = "Accuracy against the labels; fidelity: agreement with the teacher's prediction. The soft tree "
                  "predicts with its most probable leaf (Frosst & Hinton 2017); the mixture weighs every leaf by its "
                  "path probability. CART: axis-aligned splits on the same inputs, same depth, Gini, trained on the labels.";
    scores.table = {{"model", "test accuracy", "fidelity", "seconds"},
                    {"teacher", pct(r.teacher_accuracy), pct(1.0), num(r.teacher_seconds, 1)},
                    {"soft tree, most probable leaf", pct(r.tree_scores.accuracy), pct(r.tree_scores.fidelity),
                     num(r.tree_seconds, 1)},
                    {"soft tree, mixture of leaves", pct(r.mixture.accuracy), pct(r.mixture.fidelity), ""}};
    if (r.cart.nodes() > 0)
        scores.table.push_back({"CART (depth " + std::to_string(r.cart.max_depth()) + ", " +
                                    std::to_string(r.cart.leaves()) + " leaves)",
                                pct(r.cart_scores.accuracy), pct(r.cart_scores.fidelity), num(r.cart_seconds, 1)});
    rep.sections.push_back(scores);

    ReportSection hist;
    hist.title = "Training";
    hist.table = {{"epoch", "lr", "loss", "penalty", "test accuracy", "fidelity", "seconds"}};
    for (const train::DistillEpoch& e : r.history)
        hist.table.push_back({std::to_string(e.epoch), num(e.lr, 5), num(e.loss, 4), num(e.penalty, 4),
                              pct(e.test_accuracy), pct(e.fidelity), num(e.seconds, 1)});
    if (!r.history.empty()) hist.svg_figures.emplace_back("test accuracy and fidelity by epoch (history.svg)", history_svg(r));
    rep.sections.push_back(hist);

    ReportSection drawing;
    drawing.title = "The tree";
    const int64_t shown = std::min(o.levels, tc.depth);
    drawing.text = "Each inner node's filter w_i (bwr: blue negative, red positive, white 0; symmetric about 0 per "
                   "filter): the right branch (blue edge) is taken with probability sigmoid(beta (w_i . x + b_i)). " +
                   (shown < tc.depth
                        ? "The top " + std::to_string(shown) + " of " + std::to_string(tc.depth) +
                              " levels are drawn as a tree; below them each subtree of " +
                              std::to_string(tc.leaves() >> shown) +
                              " leaves is shown by its leaves' mean class distribution. "
                        : std::string("Below the last level, each leaf's class distribution. ")) +
                   "Then every filter and every leaf of the tree in grids (hover for numbers).";
    drawing.svg_figures = {{shown < tc.depth ? "the top " + std::to_string(shown) + " levels" : "the tree",
                            tree_svg(tree, names, shown)},
                           {"every filter and every leaf", grids_svg(tree, names)}};
    rep.sections.push_back(drawing);

    const int64_t n_cards = std::min<int64_t>(o.images, r.test.size());
    const std::vector<float> q = tree.leaf_distributions().to_vector<float>();
    const std::vector<float> right = r.tree_test.right.to_vector<float>();
    const std::vector<int32_t> labels = r.test.labels.to_vector<int32_t>();
    const int64_t K = tc.classes, I = tc.inner_nodes();
    for (int64_t n = 0; n < n_cards; ++n) {
        ReportItem item;
        item.title = "test image " + std::to_string(n);
        item.image = r.test.images.narrow(n, 1).view(Shape{r.test.channels(), r.test.height(), r.test.width()});
        item.true_label = class_name(names, labels[static_cast<size_t>(n)]);
        const int64_t leaf = r.tree_test.leaf[static_cast<size_t>(n)];
        const float* d = q.data() + leaf * K;
        std::vector<int64_t> order(static_cast<size_t>(K));
        for (int64_t k = 0; k < K; ++k) order[static_cast<size_t>(k)] = k;
        std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return d[a] > d[b]; });
        for (int64_t k = 0; k < std::min<int64_t>(3, K); ++k)
            item.top_classes.emplace_back(class_name(names, order[static_cast<size_t>(k)]), d[order[static_cast<size_t>(k)]]);
        item.notes.push_back("most probable leaf: " + std::to_string(leaf) + " (path probability " +
                             num(r.tree_test.leaf_probability[static_cast<size_t>(n)], 3) + ")");
        std::string others = "teacher: " + class_name(names, r.teacher_test[static_cast<size_t>(n)]) +
                             "; mixture of leaves: " + class_name(names, r.mixture_test[static_cast<size_t>(n)]);
        if (!r.cart_test.empty()) others += "; CART: " + class_name(names, r.cart_test[static_cast<size_t>(n)]);
        item.notes.push_back(others);
        for (const auto& [node, dir] : models::SoftTree::path_to_leaf(tc.depth, leaf)) {
            const double p = right[static_cast<size_t>(n * I + node)];
            item.maps.emplace_back("node " + std::to_string(node) + ": " + (dir ? "right" : "left") + " (p " +
                                       num(dir ? p : 1 - p, 3) + ")",
                                   filter_image(tree, node));
        }
        rep.items.push_back(std::move(item));
    }
    rep.methods = {
        {"soft decision tree", "Frosst & Hinton 2017 (arXiv:1711.09784): inner node i goes right with probability "
                               "sigmoid(beta (w_i . x + b_i)); leaf l holds softmax(phi_l); trained on the expected "
                               "cross-entropy sum_l P_l(x) (-sum_k T_k log Q_lk) plus the balance penalty "
                               "-lambda sum_i 2^-depth(i) (0.5 log alpha_i + 0.5 log(1 - alpha_i)); see docs/distillation.md."},
        {"path", "the inner nodes from the root to the leaf of greatest path probability, each with its filter and the "
                 "probability of the branch taken"},
        {"CART", "Breiman et al. 1984: greedy axis-aligned splits minimising the children's weighted Gini impurity"}};
    return rep;
}

std::string write_tree_report(const std::string& dir, const train::DistillConfig& config,
                              const train::DistillResult& result, const TreeReportOptions& options) {
    if (!result.history.empty())
        io::write_file_atomic((std::filesystem::path(dir) / "history.svg").string(),
                              [&](std::ostream& out) { out << history_svg(result); });
    const std::string path = (std::filesystem::path(dir) / "report.html").string();
    save_html(path, tree_report(config, result, options));
    return path;
}

}  // namespace gb::explain
