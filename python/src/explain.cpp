// Explanations for Python: Trace (one recorded forward pass, any number of
// explanations), rules and composites (presets, or per-layer maps by name and by
// layer type, as Zennit's), and every method of the method table by its spec.
#include <nanobind/nanobind.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arrays.h"
#include "core/error.h"
#include "explain/methods.h"
#include "explain/trace.h"
#include "model.h"
#include "models/checkpoint.h"

namespace gb::python {

using explain::PresetOptions;
using explain::Target;

// None: the predicted class; an int or a target text ("3", "pred", "3-5"): the same for every sample;
// a sequence: one per sample.
std::vector<Target> targets_of(const nb::handle& target) {
    auto one = [](const nb::handle& h) {
        if (nb::isinstance<nb::int_>(h)) return Target::of(nb::cast<int32_t>(h));
        if (nb::isinstance<nb::str>(h)) return Target::parse(nb::cast<std::string>(h));
        throw Error("target: expected None, a class index, a target text such as 'pred' or '3-5', or a sequence of "
                    "them, got " + std::string(nb::str(nb::type_name(h.type())).c_str()));
    };
    if (target.is_none()) return {Target::predicted()};
    if (nb::isinstance<nb::int_>(target) || nb::isinstance<nb::str>(target)) return {one(target)};
    std::vector<Target> out;
    for (nb::handle h : nb::iter(target)) out.push_back(one(h));
    return out;
}

PresetOptions preset_for(const Model& model, std::optional<float> low, std::optional<float> high,
                         const std::string& canonizer) {
    PresetOptions p;
    std::vector<float> mean, stddev;
    GB_CHECK(low.has_value() == high.has_value(), "give both low and high (the input's range), or neither");
    if (low)
        p = PresetOptions::with_range(*low, *high);
    else if (models::read_normalization(model.metadata, "the checkpoint", mean, stddev))
        p = PresetOptions::for_normalization(mean, stddev);
    p.canonizer = explain::parse_canonizer(canonizer);
    return p;
}

namespace {

using explain::Composite;
using layers::Rule;

// A Trace with the model it runs (kept alive) and the input range of the LRP presets.
struct PyTrace {
    std::shared_ptr<Model> model;
    std::unique_ptr<explain::Trace> trace;
    PresetOptions preset;
};

layers::Capability capability_of(const std::string& type) {
    static const std::map<std::string, layers::Capability> kinds = {
        {"conv", layers::Capability::Convolution},      {"linear", layers::Capability::FullyConnected},
        {"avgpool", layers::Capability::AveragePool},    {"batchnorm", layers::Capability::ChannelAffine},
        {"relu", layers::Capability::Rectifier},         {"linear-like", layers::Capability::LinearLike}};
    const auto it = kinds.find(type);
    if (it == kinds.end())
        throw Error("layer type '" + type + "': expected conv, linear, avgpool, batchnorm, relu or linear-like");
    return it->second;
}

nb::object maps_out(const std::vector<Tensor>& maps, const std::vector<std::string>& layers) {
    if (layers.empty()) return nb::cast(to_numpy(maps[0]));
    nb::dict out;
    out["input"] = to_numpy(maps[0]);
    for (size_t i = 0; i < layers.size(); ++i) out[nb::str(layers[i].c_str())] = to_numpy(maps[i + 1]);
    return out;
}

Composite composite_of(const PyTrace& t, const nb::handle& composite) {
    if (nb::isinstance<nb::str>(composite)) return Composite::preset(nb::cast<std::string>(composite), t.preset);
    return nb::cast<Composite>(composite);
}

// "name:arg,key=value,..." from the pieces, parsed and validated by the method table.
explain::MethodSpec spec_of(const std::string& method, const std::string& arg,
                            const std::map<std::string, std::string>& params) {
    std::string text = method;
    if (!arg.empty()) text += ":" + arg;
    for (const auto& [k, v] : params) text += (text.find(':') == std::string::npos ? ":" : ",") + k + "=" + v;
    return explain::parse_method(text);
}

std::shared_ptr<PyTrace> make_trace(std::shared_ptr<Model> model, const InArray& x, std::optional<float> low,
                                    std::optional<float> high, const std::string& canonizer) {
    auto t = std::make_shared<PyTrace>();
    t->model = model;
    t->preset = preset_for(*model, low, high, canonizer);
    const Tensor in = to_batch(x, model->device);
    nb::gil_scoped_release release;
    t->trace = std::make_unique<explain::Trace>(*model->net, in);
    return t;
}

nb::object attribute(const PyTrace& t, const std::string& method, const std::string& arg, const nb::handle& target,
                     const std::map<std::string, std::string>& params) {
    const explain::MethodSpec spec = spec_of(method, arg, params);
    const std::vector<Target> targets = targets_of(target);
    explain::Attribution a;
    {
        nb::gil_scoped_release release;
        a = explain::attribute(*t.trace, spec, targets, t.preset);
    }
    return nb::cast(to_numpy(a.map));
}

nb::list methods() {
    nb::list out;
    for (const auto& info : explain::list_methods()) {
        nb::list params;
        for (const auto& p : info.params) {
            nb::dict d;
            d["key"] = p.key;
            d["default"] = p.default_value.empty() ? p.default_help : p.default_value;
            d["usage"] = p.usage();
            d["help"] = p.help;
            params.append(d);
        }
        nb::dict d;
        d["name"] = info.name;
        d["aliases"] = info.aliases;
        d["kind"] = explain::method_kind_name(info.kind);
        d["arg"] = info.arg.name;
        d["arg_required"] = info.arg.required;
        d["params"] = params;
        d["description"] = info.description;
        d["signed"] = info.is_signed;
        d["usage"] = info.usage();
        out.append(d);
    }
    return out;
}

void bind_rules(nb::module_& m) {
    nb::class_<Rule>(m, "Rule", "An LRP rule for one layer (Zennit's names and defaults).")
        .def_static("epsilon", &Rule::epsilon_rule, nb::arg("epsilon") = 1e-6f, "Epsilon rule: z + eps * sign(z).")
        .def_static("lrp0", &Rule::lrp0, "LRP-0 (Epsilon(0)).")
        .def_static("zplus", &Rule::zplus, nb::arg("stabilizer") = 1e-6f, "ZPlus: positive contributions only.")
        .def_static("alpha_beta", &Rule::alpha_beta, nb::arg("alpha") = 2.f, nb::arg("beta") = 1.f,
                    nb::arg("stabilizer") = 1e-6f, "AlphaBeta (alpha - beta = 1).")
        .def_static("gamma", &Rule::gamma_rule, nb::arg("gamma") = 0.25f, nb::arg("stabilizer") = 1e-6f,
                    "Gamma (Zennit 0.5's generalised form).")
        .def_static("flat", &Rule::flat, nb::arg("stabilizer") = 1e-6f, "Flat: relevance spread evenly over the receptive field.")
        .def_static("wsquare", &Rule::wsquare, nb::arg("stabilizer") = 1e-6f, "WSquare.")
        .def_static("zbox", nb::overload_cast<float, float, float>(&Rule::zbox), nb::arg("low"), nb::arg("high"),
                    nb::arg("stabilizer") = 1e-6f, "ZBox with scalar input bounds (first layer).")
        .def_static("norm", &Rule::norm, nb::arg("stabilizer") = 1e-6f, "Norm: average pooling's rule.")
        .def_static("pass_", &Rule::pass, "Pass relevance through unchanged.")
        .def_static("gradient", &Rule::gradient, "Plain gradient (no rule).");

    nb::class_<Composite>(m, "Composite",
                          "Which rule for which layer: by layer name, by layer type, first layer, output layer; "
                          "a canonizer (BatchNorm merged as a view by default).")
        .def(nb::init<std::string>(), nb::arg("name") = "custom")
        .def(
            "by_name", [](Composite& c, const std::string& path, const Rule& r) -> Composite& { return c.by_name(path, r); },
            nb::arg("layer"), nb::arg("rule"), nb::rv_policy::reference, "Rule for the layer at a path ('features.0').")
        .def(
            "by_type",
            [](Composite& c, const std::string& type, const Rule& r) -> Composite& {
                return c.by_capability(capability_of(type), r);
            },
            nb::arg("type"), nb::arg("rule"), nb::rv_policy::reference,
            "Rule for every layer of a type: conv, linear, avgpool, batchnorm, relu, linear-like.")
        .def(
            "first_layer", [](Composite& c, const Rule& r) -> Composite& { return c.first_layer(r); }, nb::arg("rule"),
            nb::rv_policy::reference, "Rule for the first convolution or fully connected layer.")
        .def(
            "last_linear", [](Composite& c, const Rule& r) -> Composite& { return c.last_linear(r); }, nb::arg("rule"),
            nb::rv_policy::reference, "Rule for the output layer.")
        .def(
            "canonize",
            [](Composite& c, const std::string& name) -> Composite& { return c.canonize(explain::parse_canonizer(name)); },
            nb::arg("canonizer"), nb::rv_policy::reference, "'batchnorm' (default) or 'none'.")
        .def_prop_ro("name", &Composite::name)
        .def_prop_ro("canonizer", [](const Composite& c) { return explain::canonizer_name(c.canonizer()); })
        .def_static("preset_names", &Composite::preset_names, "Names of the preset composites.");
}

void bind_trace(nb::module_& m) {
    nb::class_<PyTrace>(m, "Trace",
                        "One recorded forward pass of a batch, from which any number of explanations are computed "
                        "without running the model again. Do not write to the input array while the trace lives.")
        .def(nb::new_(&make_trace), nb::arg("model"), nb::arg("x"), nb::kw_only(), nb::arg("low") = nb::none(),
             nb::arg("high") = nb::none(), nb::arg("canonizer") = "batchnorm",
             "Runs `model` on `x` [N, C, H, W] (or [C, H, W]). `low`/`high`: the input's range for the presets' "
             "bounds (ZBox); by default the checkpoint's normalisation of [0, 1] pixels, if recorded.")
        // Arrays own a handle on their tensor: not the property's default policy (reference_internal).
        .def_prop_ro("logits", [](const PyTrace& t) { return to_numpy(t.trace->logits()); }, nb::rv_policy::automatic)
        .def_prop_ro("input", [](const PyTrace& t) { return to_numpy(t.trace->input()); }, nb::rv_policy::automatic)
        .def_prop_ro("layer_names", [](const PyTrace& t) { return t.trace->layer_paths(); })
        .def(
            "layer_output", [](const PyTrace& t, const std::string& path) { return to_numpy(t.trace->layer_output(path)); },
            nb::arg("layer"), "The layer's output in the recorded pass.")
        .def(
            "layer_input", [](const PyTrace& t, const std::string& path) { return to_numpy(t.trace->layer_input(path)); },
            nb::arg("layer"), "The layer's input in the recorded pass.")
        .def(
            "relevance",
            [](const PyTrace& t, const nb::handle& composite, const nb::handle& target,
               const std::vector<std::string>& layers, bool times_logit) {
                const Composite c = composite_of(t, composite);
                const std::vector<Target> targets = targets_of(target);
                std::vector<Tensor> maps;
                {
                    nb::gil_scoped_release release;
                    maps = t.trace->relevance(c, t.trace->seed(targets, times_logit), layers);
                }
                return maps_out(maps, layers);
            },
            nb::arg("composite") = "epsilon-plus-flat", nb::arg("target") = nb::none(),
            nb::arg("layers") = std::vector<std::string>{}, nb::arg("times_logit") = false,
            "LRP relevance at the input [N, C, H, W] from one-hot(target) (times the logit with `times_logit`); "
            "with `layers`, a dict {'input': ..., layer: relevance at its output}. `composite`: a preset name or a "
            "Composite.")
        .def(
            "gradient",
            [](const PyTrace& t, const nb::handle& target, const std::vector<std::string>& layers) {
                const std::vector<Target> targets = targets_of(target);
                std::vector<Tensor> maps;
                {
                    nb::gil_scoped_release release;
                    maps = t.trace->gradient(t.trace->seed(targets), layers);
                }
                return maps_out(maps, layers);
            },
            nb::arg("target") = nb::none(), nb::arg("layers") = std::vector<std::string>{},
            "Gradient of the target logit at the input (and at `layers`' outputs, as for relevance).")
        .def("attribute", &attribute, nb::arg("method"), nb::arg("arg") = "", nb::arg("target") = nb::none(),
             nb::arg("params") = std::map<std::string, std::string>{},
             "The map of a method of the method table (see `methods()`); glassbox.Trace.attribute wraps it with "
             "keyword parameters.")
        .def(
            "canonizer_note",
            [](const PyTrace& t, const std::string& c) { return t.trace->canonizer_note(explain::parse_canonizer(c)); },
            nb::arg("canonizer") = "batchnorm", "What the canonizer does to this trace's model, in words.")
        .def_static("forward_passes", &explain::Trace::forward_passes,
                    "Forward passes run by all traces in this process (to check that a trace is reused).");

    m.def("methods", &methods, "Every explanation method of the method table, with its parameters.");
}

}  // namespace

void bind_explain(nb::module_& m) {
    bind_rules(m);
    bind_trace(m);
}

}  // namespace gb::python
