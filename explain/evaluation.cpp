// run_evaluation: the plan checked, the curve metrics set up over the input range, then the
// batches (explain/evaluation.h describes the order and why). The writers are in
// evaluation_writers.cpp.
#include "explain/evaluation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/byte_pack.h"
#include "core/error.h"
#include "core/factory.h"
#include "core/parse.h"
#include "explain/method_registry.h"
#include "explain/perturbation.h"

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
    if (o.target != "pred" && o.target != "true")
        parse_int(o.target, 0, std::numeric_limits<int32_t>::max(), "evaluation: the target (pred, true or a class index)");
    if (o.target == "true")
        for (size_t i = 0; i < p.labels.size(); ++i)
            GB_CHECK(p.labels[i] >= 0, "evaluation: target 'true' needs every image's label; image ", i, " has none");
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

// Why conservation does not apply to a method whose maps sum to nothing in particular.
std::string no_conservation_reason(const MethodSpec& spec) {
    const MethodInfo* info = find_method(spec.name);
    switch (info ? info->kind : MethodKind::Baseline) {
        case MethodKind::Cam: return "a CAM is scaled to [0, 1] per image: its sum is not a share of the score";
        case MethodKind::Gradient: return "a gradient map is a local sensitivity: it does not sum to the score";
        case MethodKind::Perturbation: return "perturbation scores are not a decomposition of the score";
        default: return "the map sums to nothing in particular";
    }
}

Conserves conserves(const MethodSpec& spec) {
    const MethodInfo* info = find_method(spec.name);
    return info ? info->conserves : Conserves::Nothing;
}

// The results before the first batch: what will be measured, for every method.
EvaluationResults start_results(const EvaluationPlan& p, const std::vector<MethodSpec>& specs) {
    EvaluationResults r;
    r.curve_metrics = make_curve_metrics(p.options, p.preset);
    for (const auto& m : r.curve_metrics) r.columns.emplace_back(m.key, m.header);
    if (contains(p.options.metrics, "sensitivity")) r.columns.emplace_back("sensitivity", "max-sensitivity (lower better)");
    if (contains(p.options.metrics, "conservation")) r.columns.emplace_back("conservation", "conservation error");
    for (const auto& s : specs) {
        MethodEvaluation m{s, {}, {}, {}, {}, 0.0};
        if (contains(p.options.metrics, "conservation") && conserves(s) == Conserves::Nothing)
            m.not_applicable["conservation"] = no_conservation_reason(s);
        r.methods.push_back(m);
    }
    r.samples = p.inputs.dim(0);
    r.labels = p.labels;
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

std::vector<Target> targets_of(const std::vector<int32_t>& classes) {
    std::vector<Target> out;
    for (int32_t c : classes) out.push_back(Target::of(c));
    return out;
}

// One method's maps of the target classes from the batch's trace, scored by the curve metrics and conservation
// (`baseline_change`: each image's target logit minus its logit at the zero baseline, when a method needs it).
void score_maps(const Trace& trace, const Tensor& x, const std::vector<int32_t>& classes, int64_t start,
                const EvaluationPlan& p, const std::vector<CurveMetric>& curve_metrics,
                const std::vector<double>& baseline_change, MethodEvaluation& m) {
    const int64_t B = x.dim(0);
    const auto t0 = std::chrono::steady_clock::now();
    const Tensor map = attribute(trace, m.spec, targets_of(classes), p.preset).map;
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
    // LRP's seed is one-hot, so relevance that is conserved sums to 1 per sample; IG and DeepLIFT's maps sum to
    // the target logit's change from the zero baseline (completeness).
    if (contains(p.options.metrics, "conservation") && m.applies("conservation"))
        append(m.values["conservation"], conservation_error(map, conserves(m.spec) == Conserves::Seed
                                                                      ? std::vector<double>(static_cast<size_t>(B), 1.0)
                                                                      : baseline_change));
}

// The classes explained for images start.. of the batch: the prediction, the label or one class.
std::vector<int32_t> explained_classes(const EvaluationPlan& p, const std::vector<int32_t>& predicted, int64_t start,
                                       int64_t num_classes) {
    const std::string& t = p.options.target;
    if (t == "pred") return predicted;
    std::vector<int32_t> out;
    for (size_t n = 0; n < predicted.size(); ++n)
        out.push_back(t == "true" ? p.labels[static_cast<size_t>(start) + n]
                                  : static_cast<int32_t>(parse_int(t, 0, std::numeric_limits<int32_t>::max(), "target")));
    for (size_t n = 0; n < out.size(); ++n)
        GB_CHECK(out[n] < num_classes, "evaluation: target class ", out[n], " of image ", start + static_cast<int64_t>(n),
                 " is outside the model's ", num_classes, " classes");
    return out;
}

bool needs_baseline_change(const EvaluationResults& r) {
    return r.measured("conservation") && std::any_of(r.methods.begin(), r.methods.end(), [](const MethodEvaluation& m) {
               return conserves(m.spec) == Conserves::ZeroBaselineDifference;
           });
}

// Per image, logits[n, c_n] - at_zero[n, c_n].
std::vector<double> logit_change(const Tensor& logits, const Tensor& at_zero, const std::vector<int32_t>& classes) {
    const auto a = logits.to_vector<float>(), z = at_zero.to_vector<float>();
    const auto K = static_cast<size_t>(logits.dim(1));
    std::vector<double> out;
    for (size_t n = 0; n < classes.size(); ++n) {
        const size_t i = n * K + static_cast<size_t>(classes[n]);
        out.push_back(static_cast<double>(a[i]) - static_cast<double>(z[i]));
    }
    return out;
}

// The checks that trace again: max-sensitivity on perturbed inputs, randomisation on re-initialised weights.
void retrace_checks(const Tensor& x, const std::vector<int32_t>& classes, const EvaluationPlan& p, MethodEvaluation& m) {
    const EvaluationOptions& o = p.options;
    const Explainer explainer = [&](layers::Layer& model, const Tensor& in, const std::vector<int32_t>& cls) {
        Trace t(model, in);
        return attribute(t, m.spec, targets_of(cls), p.preset).map;
    };
    if (contains(o.metrics, "sensitivity")) {
        SensitivityOptions so;
        so.samples = o.sensitivity_samples;
        so.radius = o.radius;
        so.seed = o.seed;
        append(m.values["sensitivity"], max_sensitivity(*p.model, x, classes, explainer, so));
    }
    // The batch's means; add_batch weights them by the batch's size.
    if (contains(o.metrics, "randomisation")) m.randomisation = randomisation_check(*p.model, x, classes, explainer, o.seed);
}

// One batch's results, as run_batch computes them and add_batch adds them to the run's, in batch order
// whichever rank computed them: classes, and per method (a MethodEvaluation of the batch's images) the values,
// curves, seconds and randomisation steps (the batch's means).
struct BatchResult {
    int64_t index = 0, correct = 0;
    std::string canonizer_note;  // batch 0's (the note depends on the model only)
    std::vector<int32_t> predicted, targets;
    std::vector<MethodEvaluation> methods;
};

// The per-method part of a batch: the run's spec and applicability, nothing measured yet.
MethodEvaluation empty_like(const MethodEvaluation& m) { return MethodEvaluation{m.spec, {}, {}, m.not_applicable, {}, 0.0}; }

BatchResult run_batch(const EvaluationPlan& p, const EvaluationResults& r, int64_t b, Device device) {
    const int64_t N = r.samples, start = b * p.options.batch, B = std::min(p.options.batch, N - start);
    const Tensor x = p.inputs.narrow(start, B).to(device);
    BatchResult out;
    out.index = b;
    for (const auto& m : r.methods) out.methods.push_back(empty_like(m));
    {
        const Trace trace(*p.model, x);
        if (b == 0) out.canonizer_note = trace.canonizer_note(p.preset.canonizer);
        out.predicted = resolve_classes({Target::predicted()}, trace.logits());
        out.targets = explained_classes(p, out.predicted, start, trace.logits().dim(1));
        std::vector<double> baseline_change;
        if (needs_baseline_change(r))
            baseline_change = logit_change(trace.logits(), predict(*p.model, zeros(x.shape(), DType::Float32, x.device())),
                                           out.targets);
        for (auto& m : out.methods) score_maps(trace, x, out.targets, start, p, r.curve_metrics, baseline_change, m);
    }
    for (auto& m : out.methods) retrace_checks(x, out.targets, p, m);
    for (int64_t n = 0; n < B; ++n) out.correct += out.predicted[static_cast<size_t>(n)] == p.labels[static_cast<size_t>(start + n)];
    return out;
}

// The run's results with batch `part` added (batches in order: the per-image lists are in image order, and the
// randomisation means are sums over batches weighted by their size, in batch order).
void add_batch(EvaluationResults& r, const BatchResult& part) {
    if (part.index == 0) r.canonizer_note = part.canonizer_note;
    r.correct += part.correct;
    r.predicted.insert(r.predicted.end(), part.predicted.begin(), part.predicted.end());
    r.targets.insert(r.targets.end(), part.targets.begin(), part.targets.end());
    const double w = static_cast<double>(part.predicted.size()) / static_cast<double>(r.samples);
    for (size_t i = 0; i < r.methods.size(); ++i) {
        MethodEvaluation& m = r.methods[i];
        const MethodEvaluation& b = part.methods[i];
        for (const auto& [key, v] : b.values) append(m.values[key], v);
        for (const auto& [key, c] : b.curves) m.curves[key].append(c);
        m.seconds += b.seconds;
        if (b.randomisation.empty()) continue;
        // The first batch gives the list of steps (layers); zeroed, so that every batch, the first too, adds
        // its share weighted by its size.
        if (m.randomisation.empty()) {
            m.randomisation = b.randomisation;
            for (auto& s : m.randomisation) {
                s.spearman = s.spearman_abs = s.ssim = 0;
                s.spearman_per_sample.clear();
                s.spearman_abs_per_sample.clear();
                s.ssim_per_sample.clear();
            }
        }
        for (size_t k = 0; k < b.randomisation.size(); ++k) {
            RandomisationStep& t = m.randomisation[k];
            const RandomisationStep& s = b.randomisation[k];
            t.spearman += w * s.spearman;
            t.spearman_abs += w * s.spearman_abs;
            t.ssim += w * s.ssim;
            append(t.spearman_per_sample, s.spearman_per_sample);
            append(t.spearman_abs_per_sample, s.spearman_abs_per_sample);
            append(t.ssim_per_sample, s.ssim_per_sample);
        }
    }
}

// Batches as bytes, to send between ranks (core/byte_pack.h).
std::string pack(const std::vector<BatchResult>& batches) {
    dist::Packer o;
    o.put(static_cast<int64_t>(batches.size()));
    for (const BatchResult& b : batches) {
        o.put(b.index);
        o.put(b.correct);
        o.put(b.canonizer_note);
        o.put(b.predicted);
        o.put(b.targets);
        for (const MethodEvaluation& m : b.methods) {
            o.put(static_cast<int64_t>(m.values.size()));
            for (const auto& [key, v] : m.values) {
                o.put(key);
                o.put(v);
            }
            o.put(static_cast<int64_t>(m.curves.size()));
            for (const auto& [key, c] : m.curves) {
                o.put(key);
                o.put(c.samples);
                o.put(c.points);
                o.put(c.fraction);
                o.put(c.values);
            }
            o.put(static_cast<int64_t>(m.randomisation.size()));
            for (const RandomisationStep& s : m.randomisation) {
                o.put(s.layer);
                o.put(s.spearman);
                o.put(s.spearman_abs);
                o.put(s.ssim);
                o.put(s.spearman_per_sample);
                o.put(s.spearman_abs_per_sample);
                o.put(s.ssim_per_sample);
            }
            o.put(m.seconds);
        }
    }
    return std::move(o.bytes);
}

void unpack(const std::string& bytes, const EvaluationResults& r, std::vector<BatchResult>& out) {
    dist::Unpacker in(bytes, "evaluation: a rank's results");
    const auto count = in.get<int64_t>();
    for (int64_t i = 0; i < count; ++i) {
        BatchResult b;
        b.index = in.get<int64_t>();
        b.correct = in.get<int64_t>();
        b.canonizer_note = in.get_string();
        b.predicted = in.get_vector<int32_t>();
        b.targets = in.get_vector<int32_t>();
        for (const auto& run_m : r.methods) {
            MethodEvaluation m = empty_like(run_m);
            for (auto n = in.get<int64_t>(); n > 0; --n) {
                std::string key = in.get_string();
                m.values[key] = in.get_vector<double>();
            }
            for (auto n = in.get<int64_t>(); n > 0; --n) {
                std::string key = in.get_string();
                Curves c;
                c.samples = in.get<int64_t>();
                c.points = in.get<int64_t>();
                c.fraction = in.get_vector<double>();
                c.values = in.get_vector<double>();
                m.curves[key] = std::move(c);
            }
            for (auto n = in.get<int64_t>(); n > 0; --n) {
                RandomisationStep s;
                s.layer = in.get_string();
                s.spearman = in.get<double>();
                s.spearman_abs = in.get<double>();
                s.ssim = in.get<double>();
                s.spearman_per_sample = in.get_vector<double>();
                s.spearman_abs_per_sample = in.get_vector<double>();
                s.ssim_per_sample = in.get_vector<double>();
                m.randomisation.push_back(std::move(s));
            }
            m.seconds = in.get<double>();
            b.methods.push_back(std::move(m));
        }
        out.push_back(std::move(b));
    }
    GB_CHECK(in.done(), "evaluation: a rank's results are longer than they say");
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
    s.ci95 = student_t_975(s.count - 1) * s.standard_error;
    return s;
}

double student_t_975(int64_t df) {
    GB_CHECK(df >= 1, "student_t_975: degrees of freedom must be >= 1, got ", df);
    static const double table[30] = {12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
                                     2.2010,  2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
                                     2.0796,  2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423};
    if (df <= 30) return table[df - 1];
    // Cornish-Fisher expansion of t's quantile in 1/df around the normal's (Abramowitz & Stegun 26.7.5).
    const double z = 1.959963984540054, n = static_cast<double>(df), z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z;
    return z + (z3 + z) / (4 * n) + (5 * z5 + 16 * z3 + 3 * z) / (96 * n * n) +
           (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * n * n * n);
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

EvaluationResults run_evaluation(const EvaluationPlan& p, const std::function<void(const EvaluationProgress&)>& progress,
                                 const dist::Comm* comm) {
    const std::vector<MethodSpec> specs = parse_evaluation_methods(p.methods);
    check_plan(p);
    EvaluationResults r = start_results(p, specs);
    const auto t0 = std::chrono::steady_clock::now();
    const Device device = model_device(*p.model);
    const dist::Comm& ranks = comm ? *comm : dist::self();
    const int64_t P = ranks.size(), N = r.samples, batches = (N + p.options.batch - 1) / p.options.batch;
    std::vector<BatchResult> mine;  // this rank's batches (with one rank: added as they come)
    int64_t done[3] = {0, 0, 0};    // batches, images, correct of every rank so far
    // Round k: rank q runs batch k P + q; then the counts of the round are summed for the progress.
    for (int64_t k = 0; k * P < batches; ++k) {
        const int64_t b = k * P + ranks.rank();
        int64_t round[3] = {0, 0, 0};
        if (b < batches) {
            BatchResult part = run_batch(p, r, b, device);
            round[0] = 1;
            round[1] = static_cast<int64_t>(part.predicted.size());
            round[2] = part.correct;
            if (P == 1) add_batch(r, part);
            else mine.push_back(std::move(part));
        }
        ranks.allreduce_sum(round, 3);
        for (int i = 0; i < 3; ++i) done[i] += round[i];
        if (progress) progress({done[0], batches, done[1], done[2]});
    }
    if (P > 1) {
        std::vector<BatchResult> all;
        for (const std::string& bytes : ranks.allgather(pack(mine))) unpack(bytes, r, all);
        std::sort(all.begin(), all.end(), [](const BatchResult& x, const BatchResult& y) { return x.index < y.index; });
        GB_CHECK(static_cast<int64_t>(all.size()) == batches, "evaluation: the ranks returned ", all.size(), " of ",
                 batches, " batches");
        for (const BatchResult& part : all) add_batch(r, part);
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace gb::explain
