// One counterfactual end to end: checks, prototype, search, pixels, report and files (counterfactual_run.h).
#include "explain/counterfactual_run.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/factory.h"
#include "explain/heatmap.h"
#include "explain/perturbation.h"
#include "explain/plot.h"
#include "explain/report.h"
#include "io/file_util.h"
#include "io/npy.h"

namespace gb::explain {

namespace {

std::string class_text(int32_t k, const std::vector<std::string>& names) {
    const std::string index = std::to_string(k);
    return k >= 0 && static_cast<size_t>(k) < names.size() && names[static_cast<size_t>(k)] != index
               ? index + " (" + names[static_cast<size_t>(k)] + ")"
               : index;
}

std::string fixed(double v, int digits) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(digits) << v;
    return o.str();
}

// Model input <-> pixels per channel: x = (p - mean) / std.
Tensor to_pixels(const Tensor& x, const ExplainInputs& in) {
    const int64_t C = x.dim(0), plane = x.numel() / C;
    auto v = x.to_vector<float>();
    for (int64_t k = 0; k < x.numel(); ++k) {
        const auto c = static_cast<size_t>(k / plane);
        v[static_cast<size_t>(k)] = v[static_cast<size_t>(k)] * in.stddev[c] + in.mean[c];
    }
    return from_vector(v, x.shape());
}

Tensor from_pixels(const Tensor& p, const ExplainInputs& in) {
    const int64_t C = p.dim(0), plane = p.numel() / C;
    auto v = p.to_vector<float>();
    for (int64_t k = 0; k < p.numel(); ++k) {
        const auto c = static_cast<size_t>(k / plane);
        v[static_cast<size_t>(k)] = (v[static_cast<size_t>(k)] - in.mean[c]) / in.stddev[c];
    }
    return from_vector(v, p.shape());
}

Tensor batch_of(const Tensor& chw) { return chw.clone().view(Shape{1, chw.dim(0), chw.dim(1), chw.dim(2)}); }

}  // namespace

void check_counterfactual_targets(layers::Layer& model, const Tensor& x, const std::vector<int32_t>& targets,
                                  const std::vector<std::string>& class_names) {
    GB_CHECK(x.rank() == 4 && static_cast<int64_t>(targets.size()) == x.dim(0), "counterfactual: ", targets.size(),
             " targets for an input ", x.shape().str());
    const Tensor logits = predict(model, x);
    const int64_t K = logits.dim(1);
    const auto l = logits.to_vector<float>();
    for (size_t n = 0; n < targets.size(); ++n) {
        const int32_t t = targets[n];
        GB_CHECK(t >= 0 && t < K, "counterfactual: target class ", t, " is outside the model's ", K, " classes (0..", K - 1, ")");
        const float* row = l.data() + static_cast<int64_t>(n) * K;
        const auto pred = static_cast<int32_t>(std::max_element(row, row + K) - row);
        GB_CHECK(t != pred, "counterfactual: the target class ", class_text(t, class_names), " is the model's prediction",
                 targets.size() > 1 ? " for input " + std::to_string(n) : std::string(),
                 " already; a counterfactual needs another class");
    }
}

int64_t nearest_of_class(const io::Dataset& data, int32_t label, const Tensor& pixels) {
    GB_CHECK(data.size() > 0 && data.images.dim(1) == pixels.dim(0) && data.images.dim(2) == pixels.dim(1) &&
                 data.images.dim(3) == pixels.dim(2),
             "counterfactual: the prototype images of ", data.name, " ", data.images.shape().str(),
             " do not have the input's shape ", pixels.shape().str());
    const int64_t per = pixels.numel();
    const float* im = data.images.data<float>();
    const int32_t* lab = data.labels.data<int32_t>();
    const auto p = pixels.to_vector<float>();
    int64_t best = -1;
    double best_d = std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < data.size(); ++i) {
        if (lab[i] != label) continue;
        double d = 0;
        for (int64_t k = 0; k < per; ++k) {
            const double e = static_cast<double>(im[i * per + k]) - static_cast<double>(p[static_cast<size_t>(k)]);
            d += e * e;
        }
        if (d < best_d) best_d = d, best = i;
    }
    GB_CHECK(best >= 0, "counterfactual: ", data.name, " has no image of class ", label, " to take a prototype from");
    return best;
}

CounterfactualRun run_counterfactual(layers::Layer& model, const ExplainInputs& in, int32_t target,
                                     CounterfactualOptions options, const Tensor& prototype,
                                     const std::string& prototype_source, std::ostream& progress) {
    GB_CHECK(in.normalized.defined() && in.normalized.dim(0) >= 1, "counterfactual: no input");
    const Tensor x = in.normalized.narrow(0, 1).clone();
    check_counterfactual_targets(model, x, {target}, in.class_names);
    const PresetOptions preset = preset_options(in);
    options.low = *preset.low;
    options.high = *preset.high;
    Tensor protos;
    CounterfactualRun r;
    if (options.prototype_weight > 0.f) {
        GB_CHECK(prototype.defined(), "counterfactual: the prototype term (weight ", options.prototype_weight,
                 ") needs a prototype image");
        r.prototype = prototype;
        r.prototype_source = prototype_source;
        protos = batch_of(from_pixels(prototype, in));
    }
    const int64_t every = std::max<int64_t>(1, options.steps / 10);
    const auto cf = counterfactuals(model, x, {target}, options, protos, [&](int64_t step, const std::vector<Counterfactual>& s) {
        const Counterfactual& c = s[0];
        if (step % every == 0 || c.reached || step == options.steps)
            progress << "counterfactual: step " << step << "/" << options.steps << ": p(target) "
                     << fixed(c.target_probability, 4) << ", class " << class_text(c.new_class, in.class_names)
                     << (c.reached ? " (target reached)" : "") << "\n";
    });
    r.result = cf[0];
    r.options = options;
    const float* p0 = r.result.probabilities.data<float>();
    r.original_class = static_cast<int32_t>(std::max_element(p0, p0 + r.result.probabilities.dim(1)) - p0);
    r.original = in.raw.narrow(0, 1).clone().view(Shape{x.dim(1), x.dim(2), x.dim(3)});
    r.counterfactual = to_pixels(r.result.input, in);
    const auto a = r.counterfactual.to_vector<float>(), b = r.original.to_vector<float>();
    std::vector<float> d(a.size());
    double sq = 0;
    for (size_t k = 0; k < a.size(); ++k) {
        d[k] = a[k] - b[k];
        sq += static_cast<double>(d[k]) * static_cast<double>(d[k]);
    }
    r.difference = from_vector(d, r.original.shape());
    r.pixel_distance = std::sqrt(sq);
    return r;
}

std::string write_counterfactual(const CounterfactualFiles& files, const ExplainInputs& in, const CounterfactualRun& run) {
    const Counterfactual& c = run.result;
    const CounterfactualOptions& o = run.options;
    const std::string& dir = files.out_dir;
    io::save_npy(dir + "/counterfactual.npy", batch_of(run.counterfactual));
    io::save_npy(dir + "/difference.npy", batch_of(run.difference));
    io::save_npy(dir + "/probabilities.npy", c.probabilities);

    // The probability path: one series per class (steps on x).
    LinePlot plot;
    plot.title = "class probabilities during the search";
    plot.x_label = "step";
    plot.y_label = "softmax probability";
    const int64_t rows = c.probabilities.dim(0), K = c.probabilities.dim(1);
    const float* p = c.probabilities.data<float>();
    for (int64_t k = 0; k < K; ++k) {
        Series s;
        s.label = class_text(static_cast<int32_t>(k), in.class_names);
        for (int64_t i = 0; i < rows; ++i) {
            s.x.push_back(static_cast<double>(i));
            s.y.push_back(static_cast<double>(p[i * K + k]));
        }
        plot.series.push_back(std::move(s));
    }
    const std::string svg = render_line_plot_svg(plot);
    io::write_file_atomic(dir + "/probability_path.svg", [&](std::ostream& out) { out << svg; });

    Report report;
    report.title = "glassbox counterfactual";
    report.info = {{"Model", files.model_name}, {"Checkpoint", files.checkpoint}, {"Input", in.names.at(0)}};
    report.sequential_colormap.clear();
    report.signed_colormap = files.signed_colormap;
    const double p_orig = static_cast<double>(p[run.original_class]);
    ReportSection result;
    result.title = "Counterfactual";
    result.text = c.reached ? "The target class was reached: the counterfactual is classified as the target with p >= confidence."
                            : "The target class was NOT reached within the step budget (the last iterate is shown).";
    result.table = {{"quantity", "value"},
                    {"original class", class_text(run.original_class, in.class_names) + ", p = " + fixed(p_orig, 4)},
                    {"target class", class_text(c.target, in.class_names)},
                    {"counterfactual's class", class_text(c.new_class, in.class_names)},
                    {"p(target) at the counterfactual", fixed(c.target_probability, 4)},
                    {"target reached", c.reached ? "yes" : "no"},
                    {"steps taken", std::to_string(c.steps)},
                    {"distance ||x' - x||_2 (model input)", fixed(c.distance, 4)},
                    {"distance ||x' - x||_2 (pixels in [0, 1])", fixed(run.pixel_distance, 4)}};
    const auto pict = [&](const Tensor& t) { return upscale_nearest(to_rgb8(t), files.upscale); };
    result.figures = {{"original (" + class_text(run.original_class, in.class_names) + ")", pict(run.original)},
                      {"counterfactual (" + class_text(c.new_class, in.class_names) + ")", pict(run.counterfactual)},
                      {"difference x' - x (" + files.signed_colormap + ", symmetric)",
                       upscale_nearest(render_heatmap(run.difference, files.signed_colormap, true), files.upscale)}};
    if (run.prototype.defined()) result.figures.push_back({"prototype: " + run.prototype_source, pict(run.prototype)});
    result.svg_figures = {{"softmax probability of each class at each step (row 0: the input)", svg}};
    report.sections.push_back(std::move(result));
    ReportSection params;
    params.title = "Parameters";
    params.text = "Minimised: -log p_target(x') + lambda ||x' - x||^2" +
                  std::string(o.prototype_weight > 0.f ? " + theta ||x' - prototype||^2" : "") +
                  " by gradient descent in the model's input space, x' kept in the range of [0, 1] pixels after normalisation.";
    params.table = {{"parameter", "value"},
                    {"steps (at most)", std::to_string(o.steps)},
                    {"learning rate", fixed(o.lr, 6)},
                    {"distance weight lambda", fixed(o.distance_weight, 6)},
                    {"confidence", fixed(o.confidence, 4)},
                    {"prototype weight theta", fixed(o.prototype_weight, 6)},
                    {"input range (model input)", "[" + fixed(o.low, 4) + ", " + fixed(o.high, 4) + "]"}};
    report.sections.push_back(std::move(params));
    report.methods = {{"counterfactual", "Wachter et al. 2017, Counterfactual explanations without opening the black box"}};
    if (o.prototype_weight > 0.f)
        report.methods.push_back({"prototype term", "Van Looveren & Klaise 2021, Interpretable counterfactual explanations guided "
                                                    "by prototypes (prototype: nearest training image of the target class)"});
    const std::string html = dir + "/report.html";
    save_html(html, report);

    const nlohmann::json runj = {{"command", "counterfactual"},
                                 {"glassbox_version", GB_VERSION},
                                 {"checkpoint", files.checkpoint},
                                 {"input", in.names.at(0)},
                                 {"original_class", run.original_class},
                                 {"target", c.target},
                                 {"new_class", c.new_class},
                                 {"target_probability", c.target_probability},
                                 {"reached", c.reached},
                                 {"steps", c.steps},
                                 {"distance", c.distance},
                                 {"pixel_distance", run.pixel_distance},
                                 {"prototype", run.prototype_source},
                                 {"options",
                                  {{"steps", o.steps},
                                   {"lr", o.lr},
                                   {"distance_weight", o.distance_weight},
                                   {"confidence", o.confidence},
                                   {"prototype_weight", o.prototype_weight},
                                   {"low", o.low},
                                   {"high", o.high}}}};
    io::write_file_atomic(dir + "/run.json", [&](std::ostream& out) { out << runj.dump(2) << "\n"; });
    return html;
}

}  // namespace gb::explain
