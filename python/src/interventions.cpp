// Interventions for Python (explain/interventions.h): do(a = v) installed on a model while an Intervention
// object lives (every forward, Trace included, runs intervened), and the channel study of `glassbox intervene`.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arrays.h"
#include "core/error.h"
#include "explain/interventions.h"
#include "model.h"

namespace gb::python {

namespace {

// An Intervention with the model it acts on (kept alive while installed).
struct PyIntervention {
    std::shared_ptr<Model> model;
    std::unique_ptr<explain::Intervention> iv;
};

Shape sample_shape(const Model& m) {
    const auto& cfg = m.net->config();
    return Shape{cfg.in_channels, cfg.input_size, cfg.input_size};
}

std::unique_ptr<PyIntervention> make(std::shared_ptr<Model> model, const std::string& layer, const std::vector<int64_t>& channels,
                                     const std::vector<int64_t>& units, const std::string& value,
                                     std::optional<InArray> given, std::optional<InArray> reference, uint64_t seed) {
    explain::DoSpec spec;
    spec.layer = layer;
    spec.channels = channels;
    spec.units = units;
    if (given) {
        GB_CHECK(value == "given", "intervention: values given as an array need value='given'");
        spec.value = explain::DoValue::Given;
        spec.given = to_tensor(*given, model->device).clone();
    } else {
        spec.value = explain::parse_do_value(value, &spec.constant);
    }
    const Tensor ref = reference ? to_batch(*reference, model->device, "reference") : Tensor();
    auto out = std::make_unique<PyIntervention>();
    out->model = model;
    nb::gil_scoped_release release;
    explain::LayerOutputs outputs;
    if (ref.defined() && (spec.value == explain::DoValue::Mean || spec.value == explain::DoValue::Resample))
        outputs = explain::record_outputs(*model->net, ref, {layer});
    out->iv = std::make_unique<explain::Intervention>(*model->net, sample_shape(*model), std::vector<explain::DoSpec>{spec}, outputs, seed);
    return out;
}

nb::list doubles(const std::vector<double>& v) {
    nb::list out;
    for (double d : v) out.append(d);
    return out;
}

nb::dict study(std::shared_ptr<Model> model, const InArray& x, const std::vector<int32_t>& labels, const std::string& layer,
               const std::vector<int64_t>& channels, const std::string& value, std::optional<InArray> reference, uint64_t seed,
               int64_t batch, const std::string& composite, const std::vector<int64_t>& ks, const std::string& out_dir,
               const std::optional<nb::callable>& progress) {
    explain::InterventionStudyOptions o;
    o.layer = layer;
    o.channels = channels;
    o.value = explain::parse_do_value(value, &o.constant);
    o.seed = seed;
    o.batch = batch;
    o.composite = composite;
    o.ks = ks;
    const Tensor in = to_batch(x, model->device);
    const Tensor ref = reference ? to_batch(*reference, model->device, "reference") : Tensor();
    explain::InterventionStudy s;
    {
        nb::gil_scoped_release release;
        s = explain::intervention_study(*model->net, in, labels, ref, o, [&](int64_t done, int64_t total) {
            if (!progress) return;
            nb::gil_scoped_acquire gil;
            (*progress)(done, total);
        });
        if (!out_dir.empty()) explain::write_intervention_study(out_dir, s, {}, {{"Model", "(a model in Python)"}});
    }
    nb::dict d;
    d["layer"] = s.layer;
    d["value"] = s.value;
    d["channels"] = s.channels;
    d["effect_logits"] = to_numpy(s.effect_logits);
    d["effect_probabilities"] = to_numpy(s.effect_probabilities);
    d["causal"] = doubles(s.causal);
    d["causal_probability"] = doubles(s.causal_probability);
    d["mean_abs"] = doubles(s.mean_abs);
    d["grad_x_act"] = doubles(s.grad_x_act);
    d["lrp"] = doubles(s.lrp);
    nb::dict rankings;
    for (const auto& [name, order] : s.rankings) rankings[nb::str(name.c_str())] = order;
    d["rankings"] = rankings;
    nb::list agreement;
    for (const auto& a : s.agreement) {
        nb::dict e;
        e["criterion"] = a.criterion;
        e["spearman"] = a.spearman;
        e["top_k_overlap"] = doubles(a.top_k_overlap);
        agreement.append(e);
    }
    d["agreement"] = agreement;
    d["ks"] = s.ks;
    d["accuracy"] = s.accuracy;
    nb::dict acc, kept;
    for (const auto& [name, v] : s.ablation_accuracy) acc[nb::str(name.c_str())] = doubles(v);
    for (const auto& [name, v] : s.ablation_agreement) kept[nb::str(name.c_str())] = doubles(v);
    d["ablation_accuracy"] = acc;
    d["ablation_kept"] = kept;
    return d;
}

}  // namespace

void bind_interventions(nb::module_& m) {
    nb::class_<PyIntervention>(m, "_Intervention", "do(a = v) on a model while installed (gb.Intervention).")
        .def("remove", [](PyIntervention& p) { p.iv->remove(); }, "Uninstalls the intervention.")
        .def("describe", [](const PyIntervention& p) { return p.iv->describe(); });
    m.def("_intervention", &make, nb::arg("model"), nb::arg("layer"), nb::arg("channels"), nb::arg("units"), nb::arg("value"),
          nb::arg("given").none(), nb::arg("reference").none(), nb::arg("seed"));
    m.def("_intervention_study", &study, nb::arg("model"), nb::arg("x"), nb::arg("labels"), nb::arg("layer"), nb::arg("channels"),
          nb::arg("value"), nb::arg("reference").none(), nb::arg("seed"), nb::arg("batch"), nb::arg("composite"), nb::arg("ks"),
          nb::arg("out_dir"), nb::arg("progress").none());
}

}  // namespace gb::python
