// Evaluation metrics and training for Python: perturbation curves (AOPC, deletion and insertion
// areas come from them), max-sensitivity, the model-randomisation check and conservation
// (explain/metrics.h), the whole evaluation run of `glassbox evaluate` (explain/evaluation.h), and a
// training run with a progress callback (train/trainer.h). Per-sample values come back as NumPy
// arrays [N] and curves as [N, points]; python/glassbox/metrics.py adds the conventions (targets,
// replacements by name, input ranges from the checkpoint).
#include <nanobind/nanobind.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <streambuf>
#include <string>
#include <vector>

#include "arrays.h"
#include "core/error.h"
#include "explain/evaluation.h"
#include "explain/methods.h"
#include "explain/metrics.h"
#include "explain/perturbation.h"
#include "explain/trace.h"
#include "model.h"
#include "train/trainer.h"

namespace gb::python {

namespace {

using explain::Target;

// The class explained for each sample: the targets resolved against the model's logits for x
// (a contrast target "a-b" scores class a). Runs the model when a target is the prediction.
std::vector<int32_t> classes_for(Model& model, const Tensor& x, const std::vector<Target>& targets) {
    GB_CHECK(targets.size() == 1 || static_cast<int64_t>(targets.size()) == x.dim(0), "target: ", targets.size(),
             " targets for ", x.dim(0), " samples (give one, or one per sample)");
    bool predicted = false;
    for (const auto& t : targets) predicted |= t.kind == Target::Kind::Predicted;
    std::vector<int32_t> out;
    if (predicted) {
        out = explain::resolve_classes(targets, explain::predict(*model.net, x));
    } else {
        for (const auto& t : targets) out.push_back(t.cls);
        if (out.size() == 1) out.assign(static_cast<size_t>(x.dim(0)), out[0]);
    }
    const int64_t classes = model.net->config().num_classes;
    for (int32_t c : out) GB_CHECK(c >= 0 && c < classes, "target: class ", c, " is not in [0, ", classes, ")");
    return out;
}

// The randomisation check's steps as dicts: the layer, the means over samples and the per-sample values [N].
nb::list randomisation_steps(const std::vector<explain::RandomisationStep>& steps) {
    nb::list out;
    for (const auto& s : steps) {
        nb::dict d;
        d["layer"] = s.layer;
        d["spearman"] = s.spearman;
        d["spearman_abs"] = s.spearman_abs;
        d["ssim"] = s.ssim;
        d["spearman_per_sample"] = to_numpy(s.spearman_per_sample);
        d["spearman_abs_per_sample"] = to_numpy(s.spearman_abs_per_sample);
        d["ssim_per_sample"] = to_numpy(s.ssim_per_sample);
        out.append(d);
    }
    return out;
}

// A method spec as a function of (model, input, classes), as `glassbox evaluate` explains perturbed
// inputs and re-initialised models.
explain::Explainer explainer_for(const explain::MethodSpec& spec, const explain::PresetOptions& preset) {
    return [spec, preset](layers::Layer& model, const Tensor& in, const std::vector<int32_t>& cls) {
        explain::Trace t(model, in);
        std::vector<Target> targets;
        for (int32_t c : cls) targets.push_back(Target::of(c));
        return explain::attribute(t, spec, targets, preset).map;
    };
}

nb::dict curves(Model& model, const InArray& x, const InArray& maps, const nb::handle& target, bool insertion,
                int64_t patch, int64_t steps, int64_t units_per_step, const std::string& replacement,
                std::optional<float> value, std::optional<float> low, std::optional<float> high, float blur_sigma,
                bool probability, uint64_t seed, int64_t batch) {
    const Tensor in = to_batch(x, model.device), map = to_batch(maps, model.device, "maps");
    const std::vector<Target> targets = targets_of(target);
    // The input range, as `glassbox evaluate` takes it: given, or the checkpoint's normalisation of [0, 1] pixels.
    const explain::PresetOptions range = preset_for(model, low, high, "none");
    explain::PerturbationOptions o;
    o.insertion = insertion;
    o.patch = patch;
    o.steps = steps;
    o.units_per_step = units_per_step;
    GB_CHECK(replacement == "black" || replacement == "value" || replacement == "noise" || replacement == "mean" ||
                 replacement == "blur",
             "unknown replacement '", replacement, "' (noise, mean, blur, black, value)");
    // "black": the constant a black pixel becomes (the range's low end); "noise": uniform over the range.
    o.replacement = explain::parse_replacement(replacement == "black" ? "value" : replacement);
    if (replacement == "black" || o.replacement == explain::Replacement::Noise)
        GB_CHECK(range.low && range.high, "replacement '", replacement, "' needs the input range: give low and high "
                 "(e.g. low=0.0, high=1.0 for pixels in [0, 1]), or a checkpoint that records its normalisation");
    if (replacement == "black") {
        GB_CHECK(!value, "replacement 'black' takes no value (it is the input range's low end)");
        o.value = *range.low;
    } else if (o.replacement == explain::Replacement::Value) {
        GB_CHECK(value.has_value(), "replacement 'value' needs value=");
        o.value = *value;
    }
    if (o.replacement == explain::Replacement::Noise) {
        o.noise_low = *range.low;
        o.noise_high = *range.high;
    }
    o.blur_sigma = blur_sigma;
    o.probability = probability;
    o.seed = seed;
    o.batch = batch;
    explain::Curves c;
    std::vector<double> aopc, area;
    {
        nb::gil_scoped_release release;
        const std::vector<int32_t> classes = classes_for(model, in, targets);
        c = explain::perturbation_curves(*model.net, in, map, classes, o);
        aopc = explain::aopc_per_sample(c);
        area = explain::area_per_sample(c);
    }
    nb::dict out;
    out["fraction"] = to_numpy(c.fraction);
    out["values"] = to_numpy(c.values, {static_cast<size_t>(c.samples), static_cast<size_t>(c.points)});
    out["aopc"] = to_numpy(std::move(aopc));
    out["area"] = to_numpy(std::move(area));
    return out;
}

Doubles max_sensitivity(Model& model, const InArray& x, const std::string& method, const nb::handle& target,
                        int64_t samples, float radius, uint64_t seed, std::optional<float> low,
                        std::optional<float> high, const std::string& canonizer) {
    const Tensor in = to_batch(x, model.device);
    const std::vector<Target> targets = targets_of(target);
    const explain::Explainer explainer =
        explainer_for(explain::parse_method(method), preset_for(model, low, high, canonizer));
    explain::SensitivityOptions o;
    o.samples = samples;
    o.radius = radius;
    o.seed = seed;
    std::vector<double> out;
    {
        nb::gil_scoped_release release;
        out = explain::max_sensitivity(*model.net, in, classes_for(model, in, targets), explainer, o);
    }
    return to_numpy(std::move(out));
}

nb::list randomisation(Model& model, const InArray& x, const std::string& method, const nb::handle& target,
                       uint64_t seed, std::optional<float> low, std::optional<float> high, const std::string& canonizer) {
    const Tensor in = to_batch(x, model.device);
    const std::vector<Target> targets = targets_of(target);
    const explain::Explainer explainer =
        explainer_for(explain::parse_method(method), preset_for(model, low, high, canonizer));
    std::vector<explain::RandomisationStep> steps;
    {
        nb::gil_scoped_release release;
        steps = explain::randomisation_check(*model.net, in, classes_for(model, in, targets), explainer, seed);
    }
    return randomisation_steps(steps);
}

Doubles conservation(const InArray& maps, const std::vector<double>& expected) {
    const Tensor map = to_batch(maps, Device::cpu(), "maps");
    std::vector<double> e = expected;
    if (e.size() == 1) e.assign(static_cast<size_t>(map.dim(0)), e[0]);
    GB_CHECK(static_cast<int64_t>(e.size()) == map.dim(0), "conservation: ", e.size(), " expected sums for ",
             map.dim(0), " maps");
    std::vector<double> out;
    {
        nb::gil_scoped_release release;
        out = explain::conservation_error(map, e);
    }
    return to_numpy(std::move(out));
}

nb::dict evaluate(std::shared_ptr<Model> model, const InArray& x, const std::vector<int32_t>& labels,
                  const std::vector<std::string>& methods, const std::vector<std::string>& metrics, int64_t batch,
                  int64_t patch, int64_t aopc_steps, const std::vector<std::string>& replacements, int64_t steps,
                  float blur_sigma, int64_t sensitivity_samples, float radius, uint64_t seed, std::optional<float> low,
                  std::optional<float> high, const std::string& canonizer, const std::string& target,
                  const std::string& out_dir, const std::optional<nb::callable>& progress) {
    explain::EvaluationPlan plan;
    plan.model = model->net;
    plan.inputs = to_batch(x, model->device);
    plan.labels = labels;
    plan.methods = methods;
    plan.preset = preset_for(*model, low, high, canonizer);
    GB_CHECK(plan.preset.low && plan.preset.high, "evaluate: the input range is unknown (the checkpoint records no "
             "normalisation): give low and high, e.g. low=0.0, high=1.0 for pixels in [0, 1]");
    plan.options.metrics = metrics;
    plan.options.batch = batch;
    plan.options.patch = patch;
    plan.options.aopc_steps = aopc_steps;
    plan.options.replacements = replacements;
    plan.options.steps = steps;
    plan.options.blur_sigma = blur_sigma;
    plan.options.sensitivity_samples = sensitivity_samples;
    plan.options.radius = radius;
    plan.options.seed = seed;
    plan.options.target = target;
    // Only named in the texts (results.md, report.html, run.json).
    plan.checkpoint = "(a model in Python)";
    plan.data = "Python";  // "12 Python array images (the first 12)"
    plan.split = "array";
    explain::EvaluationResults r;
    {
        nb::gil_scoped_release release;
        r = explain::run_evaluation(plan, [&](const explain::EvaluationProgress& p) {
            if (!progress) return;
            nb::gil_scoped_acquire gil;
            (*progress)(p.batch, p.batches, p.images, p.correct);
        });
        if (!out_dir.empty()) explain::write_evaluation(r, out_dir);
    }
    nb::dict out;
    nb::list columns;
    for (const auto& [key, header] : r.columns) columns.append(nb::make_tuple(key, header));
    out["columns"] = columns;
    out["samples"] = r.samples;
    out["labels"] = r.labels;
    out["predicted"] = r.predicted;
    out["targets"] = r.targets;
    out["correct"] = r.correct;
    out["seconds"] = r.seconds;
    nb::dict fractions;
    for (const auto& cm : r.curve_metrics) {
        for (const auto& m : r.methods) {
            const auto it = m.curves.find(cm.key);
            if (it != m.curves.end()) fractions[nb::str(cm.key.c_str())] = to_numpy(it->second.fraction);
            break;
        }
    }
    out["fractions"] = fractions;
    nb::dict per_method;
    for (const auto& m : r.methods) {
        nb::dict d, values, curves;
        for (const auto& [key, v] : m.values) values[nb::str(key.c_str())] = to_numpy(v);
        for (const auto& [key, c] : m.curves)
            curves[nb::str(key.c_str())] = to_numpy(c.values, {static_cast<size_t>(c.samples), static_cast<size_t>(c.points)});
        nb::dict not_applicable;
        for (const auto& [key, why] : m.not_applicable) not_applicable[nb::str(key.c_str())] = why;
        d["values"] = values;
        d["curves"] = curves;
        d["not_applicable"] = not_applicable;
        d["randomisation"] = randomisation_steps(m.randomisation);
        d["seconds"] = m.seconds;
        per_method[nb::str(m.spec.text.c_str())] = d;
    }
    out["methods"] = per_method;
    return out;
}

// Discards what it is given (gb.train without `verbose`).
struct NullBuffer : std::streambuf {
    int overflow(int c) override { return c; }
};

nb::dict train(const std::map<std::string, nb::object>& kwargs, const std::optional<nb::callable>& progress,
               bool verbose) {
    train::TrainConfig c;
    std::vector<std::string> unknown;
    // nanobind's casts convert: "3" and True would pass as 3 and 1. An integer option takes an integer (anything
    // with __index__, so NumPy's too, but not a bool); the type error below names what it got.
    const auto integer = [](const nb::object& v) -> int64_t {
        if (!PyIndex_Check(v.ptr()) || PyBool_Check(v.ptr())) throw nb::cast_error();
        return nb::cast<int64_t>(v);
    };
    for (const auto& [key, value] : kwargs) try {
        if (key == "model") c.model = nb::cast<std::string>(value);
        else if (key == "data") c.data = nb::cast<std::string>(value);
        else if (key == "data_dir") c.data_dir = nb::cast<std::string>(value);
        else if (key == "epochs") c.epochs = integer(value);
        else if (key == "batch_size") c.batch_size = integer(value);
        else if (key == "optimizer") c.optimizer = nb::cast<std::string>(value);
        else if (key == "lr") c.lr = nb::cast<float>(value);
        else if (key == "momentum") c.momentum = nb::cast<float>(value);
        else if (key == "nesterov") c.nesterov = nb::cast<bool>(value);
        else if (key == "weight_decay") c.weight_decay = nb::cast<float>(value);
        else if (key == "schedule") c.schedule.kind = nb::cast<std::string>(value);
        else if (key == "step_size") c.schedule.step_size = integer(value);
        else if (key == "gamma") c.schedule.gamma = nb::cast<float>(value);
        else if (key == "min_lr") c.schedule.min_lr = nb::cast<float>(value);
        else if (key == "warmup") c.schedule.warmup_epochs = nb::cast<double>(value);
        else if (key == "seed") {
            const int64_t seed = integer(value);
            GB_CHECK(seed >= 0, "train: seed must be >= 0, got ", seed);
            c.seed = static_cast<uint64_t>(seed);
        }
        else if (key == "out_dir") c.out_dir = nb::cast<std::string>(value);
        else if (key == "resume") c.resume = nb::cast<std::string>(value);
        else if (key == "stop_after") c.stop_after = integer(value);
        else if (key == "train_limit") c.train_limit = integer(value);
        else if (key == "test_limit") c.test_limit = integer(value);
        else if (key == "crop_padding") c.crop_padding = integer(value);
        else if (key == "hflip") c.hflip = nb::cast<bool>(value);
        else if (key == "save_every") c.save_every = integer(value);
        else if (key == "device") c.device = Device::parse(nb::cast<std::string>(value));
        else unknown.push_back(key);
    } catch (const nb::cast_error&) {
        throw Error("train: option '" + key + "' does not take a " +
                    std::string(nb::str(nb::type_name(value.type())).c_str()));
    }
    GB_CHECK(unknown.empty(), "train: unknown option '", unknown.empty() ? "" : unknown[0],
             "' (model, data, data_dir, epochs, batch_size, optimizer, lr, momentum, nesterov, weight_decay, schedule, "
             "step_size, gamma, min_lr, warmup, seed, out_dir, resume, stop_after, train_limit, test_limit, "
             "crop_padding, hflip, save_every, device)");
    // An exception from the callback is kept and raised again as itself once training has stopped (the
    // Trainer is spent by it; the files on disk stay the last good ones).
    std::optional<nb::python_error> raised;
    if (progress)
        c.on_batch = [&](const train::BatchProgress& p) {
            nb::gil_scoped_acquire gil;
            try {
                nb::dict d;
                d["epoch"] = p.epoch;
                d["epochs"] = p.epochs;
                d["batch"] = p.batch;
                d["batches"] = p.batches;
                d["seen"] = p.seen;
                d["loss"] = p.loss;
                d["accuracy"] = p.accuracy;
                d["lr"] = p.lr;
                (*progress)(d);
            } catch (nb::python_error& e) {
                raised.emplace(e);
                throw Error("training stopped by the progress callback at epoch " + std::to_string(p.epoch) +
                            ", batch " + std::to_string(p.batch));
            }
        };
    NullBuffer null;
    std::ostream quiet(&null);
    train::TrainResult r;
    try {
        nb::gil_scoped_release release;
        r = train::run_training(c, verbose ? std::cerr : quiet);
    } catch (const Error&) {
        if (raised) throw *raised;
        throw;
    }
    nb::list history;
    for (const auto& e : r.history) {
        nb::dict d;
        d["epoch"] = e.epoch;
        d["lr"] = e.lr;
        d["train_loss"] = e.train_loss;
        d["train_acc"] = e.train_acc;
        d["test_loss"] = e.test_loss;
        d["test_acc"] = e.test_acc;
        d["seconds"] = e.seconds;
        d["images_per_s"] = e.images_per_s;
        history.append(d);
    }
    nb::dict out;
    out["history"] = history;
    out["model"] = r.model_path;
    out["resume"] = r.resume_path;
    out["metrics_csv"] = r.metrics_csv;
    out["metrics_json"] = r.metrics_json;
    return out;
}

}  // namespace

void bind_metrics(nb::module_& m) {
    m.def("_perturbation_curves", &curves, nb::arg("model"), nb::arg("x"), nb::arg("maps"), nb::arg("target").none(),
          nb::arg("insertion"), nb::arg("patch"), nb::arg("steps"), nb::arg("units_per_step"), nb::arg("replacement"),
          nb::arg("value").none(), nb::arg("low").none(), nb::arg("high").none(), nb::arg("blur_sigma"), nb::arg("probability"),
          nb::arg("seed"), nb::arg("batch"),
          "Perturbation curves (explain/metrics.h): {'fraction': [P], 'values': [N, P], 'aopc': [N], 'area': [N]}; "
          "glassbox.metrics wraps it.");
    m.def("_max_sensitivity", &max_sensitivity, nb::arg("model"), nb::arg("x"), nb::arg("method"), nb::arg("target").none(),
          nb::arg("samples"), nb::arg("radius"), nb::arg("seed"), nb::arg("low").none(), nb::arg("high").none(),
          nb::arg("canonizer"), "Max-sensitivity per sample [N]; glassbox.metrics wraps it.");
    m.def("_randomisation", &randomisation, nb::arg("model"), nb::arg("x"), nb::arg("method"), nb::arg("target").none(),
          nb::arg("seed"), nb::arg("low").none(), nb::arg("high").none(), nb::arg("canonizer"),
          "Cascading model randomisation; glassbox.metrics wraps it.");
    m.def("_conservation", &conservation, nb::arg("maps"), nb::arg("expected"),
          "Conservation error per sample [N]; glassbox.metrics wraps it.");
    m.def("_evaluate", &evaluate, nb::arg("model"), nb::arg("x"), nb::arg("labels"), nb::arg("methods"),
          nb::arg("metrics"), nb::arg("batch"), nb::arg("patch"), nb::arg("aopc_steps"), nb::arg("replacements"),
          nb::arg("steps"), nb::arg("blur_sigma"), nb::arg("sensitivity_samples"), nb::arg("radius"), nb::arg("seed"),
          nb::arg("low").none(), nb::arg("high").none(), nb::arg("canonizer"), nb::arg("target"), nb::arg("out_dir"),
          nb::arg("progress").none(), "The evaluation run of `glassbox evaluate`; glassbox.evaluate wraps it.");
    m.def("_train", &train, nb::arg("config"), nb::arg("progress").none(), nb::arg("verbose"),
          "A training run (train::Trainer); glassbox.train wraps it.");
}

}  // namespace gb::python
