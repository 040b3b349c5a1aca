// run_evaluation: the plan checked, the curve metrics set up over the input range, then the
// batches (explain/evaluation.h describes the order and why). The writers are in
// evaluation_writers.cpp.
#include "explain/evaluation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace gb::explain {

namespace {

bool contains(const std::vector<std::string>& list, const std::string& s) {
    return std::find(list.begin(), list.end(), s) != list.end();
}

void check_plan(const EvaluationPlan& p) {
    const EvaluationOptions& o = p.options;
    GB_CHECK(p.model, "evaluation: the plan has no model");
    GB_CHECK(p.inputs.defined() && p.inputs.rank() == 4 && p.inputs.dim(0) > 0,
             "evaluation: the inputs must be a non-empty [N, C, H, W] batch, got ",
             p.inputs.defined() ? p.inputs.shape().str() : std::string("(undefined)"));
    GB_CHECK(static_cast<int64_t>(p.labels.size()) == p.inputs.dim(0), "evaluation: ", p.labels.size(), " labels for ",
             p.inputs.dim(0), " images");
    GB_CHECK(!o.metrics.empty(), "evaluation: no metric (", "aopc, deletion, insertion, randomisation, sensitivity, conservation)");
    for (const auto& m : o.metrics)
        GB_CHECK(contains(evaluation_metric_names(), m), "evaluation: unknown metric '", m,
                 "' (aopc, deletion, insertion, randomisation, sensitivity, conservation)");
    GB_CHECK(o.batch > 0, "evaluation: the batch must be positive, got ", o.batch);
    GB_CHECK(p.preset.low && p.preset.high, "evaluation: the plan's preset needs the input range (low, high): give "
             "PresetOptions::for_normalization(mean, std) or PresetOptions::with_range(low, high)");
    if (contains(o.metrics, "aopc")) {
        GB_CHECK(!o.replacements.empty(), "evaluation: AOPC needs a replacement (noise, mean, blur, black)");
        for (const auto& r : o.replacements) {
            GB_CHECK(r == "noise" || r == "mean" || r == "blur" || r == "black", "evaluation: unknown AOPC replacement '",
                     r, "' (noise, mean, blur, black)");
            // Two equal columns would share one key, and each image would be counted twice.
            GB_CHECK(std::count(o.replacements.begin(), o.replacements.end(), r) == 1, "evaluation: AOPC replacement '", r,
                     "' is given twice");
        }
    }
}

// Samek et al.: patches removed most relevant first, one per step, replaced by noise over the
// pixel range (or the mean, a blur, black); Petsiuk et al.: pixels deleted to black / inserted
// into a blurred input.
std::vector<CurveMetric> make_curve_metrics(const EvaluationOptions& o, const PresetOptions& preset) {
    std::vector<CurveMetric> out;
    if (contains(o.metrics, "aopc"))
        for (const auto& r : o.replacements) {
            CurveMetric m{"aopc-" + r, "AOPC, " + r + " (higher better)", "AOPC: most relevant patches replaced by " + r + " first",
                          "logit of the class", {}, true};
            m.options.patch = o.patch;
            m.options.steps = o.aopc_steps;
            m.options.units_per_step = 1;
            // "black" is a constant: the value of a black pixel after the model's normalisation (preset.low).
            m.options.replacement = r == "black" ? Replacement::Value : parse_replacement(r);
            m.options.value = *preset.low;
            m.options.noise_low = *preset.low;
            m.options.noise_high = *preset.high;
            m.options.blur_sigma = o.blur_sigma;
            m.options.seed = o.seed;
            out.push_back(m);
        }
    PerturbationOptions del;
    del.steps = o.steps;
    del.replacement = Replacement::Value;
    del.value = *preset.low;
    del.probability = true;
    del.seed = o.seed;
    if (contains(o.metrics, "deletion"))
        out.push_back({"deletion", "deletion AUC (lower better)", "Deletion: most relevant pixels to black first",
                       "probability of the class", del, false});
    PerturbationOptions ins = del;
    ins.insertion = true;
    ins.replacement = Replacement::Blur;
    ins.blur_sigma = o.blur_sigma;
    if (contains(o.metrics, "insertion"))
        out.push_back({"insertion", "insertion AUC (higher better)", "Insertion: most relevant pixels into the blurred input first",
                       "probability of the class", ins, false});
    return out;
}

// The results before the first batch: what will be measured, for every method.
EvaluationResults start_results(const EvaluationPlan& p, const std::vector<MethodSpec>& specs) {
    EvaluationResults r;
    r.curve_metrics = make_curve_metrics(p.options, p.preset);
    for (const auto& m : r.curve_metrics) r.columns.emplace_back(m.key, m.header);
    if (contains(p.options.metrics, "sensitivity")) r.columns.emplace_back("sensitivity", "max-sensitivity (lower better)");
    if (contains(p.options.metrics, "conservation")) r.columns.emplace_back("conservation", "conservation error");
    for (const auto& s : specs) r.methods.push_back({s, {}, {}, {}, 0.0});
    r.samples = p.inputs.dim(0);
    r.options = p.options;
    r.data = p.data;
    r.split = p.split;
    r.checkpoint = p.checkpoint;
    r.model = p.model->describe();
    r.canonizer = canonizer_name(p.preset.canonizer);
    return r;
}

Device model_device(layers::Layer& model) {
    const auto params = model.parameters();
    return params.empty() ? Device::cpu() : params.front().device();
}

void append(std::vector<double>& to, const std::vector<double>& more) { to.insert(to.end(), more.begin(), more.end()); }

// One method's maps from the batch's trace, scored by the curve metrics and conservation.
void score_maps(const Trace& trace, const Tensor& x, const std::vector<int32_t>& classes, int64_t start,
                const EvaluationPlan& p, const std::vector<CurveMetric>& curve_metrics, MethodEvaluation& m) {
    const int64_t B = x.dim(0);
    const auto t0 = std::chrono::steady_clock::now();
    const Tensor map = attribute(trace, m.spec, {Target::predicted()}, p.preset).map;
    m.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // A NaN has no rank: the perturbation order, hence every curve, would be arbitrary.
    if (const int64_t bad = count_non_finite(map))
        GB_FAIL("evaluation: ", m.spec.text, " gave maps with ", bad, " NaN or infinite values on images ", start, "..",
                start + B - 1, "; they cannot be scored");
    for (const auto& cm : curve_metrics) {
        // The trace's logits score the unperturbed points of the curve without another forward.
        const Curves c = perturbation_curves(*p.model, x, map, classes, cm.options, trace.logits());
        m.curves[cm.key].append(c);
        append(m.values[cm.key], cm.aopc ? aopc_per_sample(c) : area_per_sample(c));
    }
    // The seed is one-hot, so relevance that is conserved sums to 1 per sample.
    if (contains(p.options.metrics, "conservation"))
        append(m.values["conservation"], conservation_error(map, std::vector<double>(static_cast<size_t>(B), 1.0)));
}

// The checks that trace again: max-sensitivity on perturbed inputs, randomisation on re-initialised weights.
void retrace_checks(const Tensor& x, const std::vector<int32_t>& classes, const EvaluationPlan& p, MethodEvaluation& m) {
    const EvaluationOptions& o = p.options;
    const Explainer explainer = [&](layers::Layer& model, const Tensor& in, const std::vector<int32_t>& cls) {
        Trace t(model, in);
        std::vector<Target> targets;
        for (int32_t c : cls) targets.push_back(Target::of(c));
        return attribute(t, m.spec, targets, p.preset).map;
    };
    if (contains(o.metrics, "sensitivity")) {
        SensitivityOptions so;
        so.samples = o.sensitivity_samples;
        so.radius = o.radius;
        so.seed = o.seed;
        append(m.values["sensitivity"], max_sensitivity(*p.model, x, classes, explainer, so));
    }
    if (contains(o.metrics, "randomisation")) {
        const auto steps = randomisation_check(*p.model, x, classes, explainer, o.seed);
        // The first batch gives the list of steps (layers); zeroed, so that every batch, the first too,
        // adds its share weighted by its size.
        if (m.randomisation.empty()) {
            m.randomisation = steps;
            for (auto& s : m.randomisation) s.spearman = s.spearman_abs = s.ssim = 0;
        }
        const double w = static_cast<double>(x.dim(0)) / static_cast<double>(p.inputs.dim(0));
        for (size_t i = 0; i < steps.size(); ++i) {
            m.randomisation[i].spearman += w * steps[i].spearman;
            m.randomisation[i].spearman_abs += w * steps[i].spearman_abs;
            m.randomisation[i].ssim += w * steps[i].ssim;
        }
    }
}

}  // namespace

const std::vector<std::string>& evaluation_metric_names() {
    static const std::vector<std::string> names = {"aopc", "deletion", "insertion", "randomisation", "sensitivity", "conservation"};
    return names;
}

Summary summarize(const std::vector<double>& v) {
    Summary s;
    s.count = static_cast<int64_t>(v.size());
    if (v.empty()) return s;
    s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    if (v.size() < 2) return s;
    double ss = 0;
    for (double a : v) ss += (a - s.mean) * (a - s.mean);
    s.standard_error = std::sqrt(ss / static_cast<double>(v.size() - 1) / static_cast<double>(v.size()));
    return s;
}

Summary MethodEvaluation::summary(const std::string& key) const {
    const auto it = values.find(key);
    GB_CHECK(it != values.end(), "evaluation: ", spec.text, " has no values for '", key, "'");
    return summarize(it->second);
}

bool EvaluationResults::measured(const std::string& metric) const { return contains(options.metrics, metric); }

bool EvaluationResults::any_lrp() const {
    return std::any_of(methods.begin(), methods.end(), [](const MethodEvaluation& m) { return m.spec.name == "lrp"; });
}

const MethodEvaluation& EvaluationResults::method(const std::string& text) const {
    for (const auto& m : methods)
        if (m.spec.text == text) return m;
    GB_FAIL("evaluation: no results for method '", text, "'");
}

std::vector<MethodSpec> parse_evaluation_methods(const std::vector<std::string>& methods) {
    GB_CHECK(!methods.empty(), "evaluation: no method (see glassbox explain --list)");
    std::vector<MethodSpec> specs;
    for (const auto& m : methods) {
        GB_CHECK(std::count(methods.begin(), methods.end(), m) == 1, "evaluation: method ", m,
                 " is given twice (results are keyed by the spec's text)");
        specs.push_back(parse_method(m));
    }
    return specs;
}

EvaluationResults run_evaluation(const EvaluationPlan& p, const std::function<void(const EvaluationProgress&)>& progress) {
    const std::vector<MethodSpec> specs = parse_evaluation_methods(p.methods);
    check_plan(p);
    EvaluationResults r = start_results(p, specs);
    const auto t0 = std::chrono::steady_clock::now();
    const Device device = model_device(*p.model);
    const int64_t N = r.samples, batches = (N + p.options.batch - 1) / p.options.batch;
    for (int64_t b = 0; b < batches; ++b) {
        const int64_t start = b * p.options.batch, B = std::min(p.options.batch, N - start);
        const Tensor x = p.inputs.narrow(start, B).to(device);
        std::vector<int32_t> classes;
        {
            const Trace trace(*p.model, x);
            // The note depends on the model only: the first batch's serves for the texts.
            if (b == 0) r.canonizer_note = trace.canonizer_note(p.preset.canonizer);
            classes = resolve_classes({Target::predicted()}, trace.logits());
            for (auto& m : r.methods) score_maps(trace, x, classes, start, p, r.curve_metrics, m);
        }
        for (auto& m : r.methods) retrace_checks(x, classes, p, m);
        for (int64_t n = 0; n < B; ++n) r.correct += classes[static_cast<size_t>(n)] == p.labels[static_cast<size_t>(start + n)];
        if (progress) progress({b + 1, batches, start + B, r.correct});
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace gb::explain
