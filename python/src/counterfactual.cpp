// Counterfactuals for Python (explain/model_methods.h, explain/counterfactual_run.h): the targets checked as
// `glassbox counterfactual` checks them (a class of the model other than its prediction), then
// explain::counterfactuals in the model's input space, one result dict per sample.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <optional>
#include <vector>

#include "arrays.h"
#include "core/error.h"
#include "explain/counterfactual_run.h"
#include "explain/model_methods.h"
#include "model.h"

namespace gb::python {

namespace {

nb::list counterfactuals(std::shared_ptr<Model> model, const InArray& x, const std::vector<int32_t>& targets, int64_t steps,
                         float lr, float distance_weight, float confidence, float prototype_weight,
                         std::optional<InArray> prototypes, std::optional<float> low, std::optional<float> high) {
    const explain::PresetOptions range = preset_for(*model, low, high, "none");
    GB_CHECK(range.low && range.high, "counterfactual: the input range is unknown (the checkpoint records no normalisation): "
             "give low and high, e.g. low=0.0, high=1.0 for pixels in [0, 1]");
    explain::CounterfactualOptions o;
    o.steps = steps;
    o.lr = lr;
    o.distance_weight = distance_weight;
    o.confidence = confidence;
    o.prototype_weight = prototype_weight;
    o.low = *range.low;
    o.high = *range.high;
    const Tensor in = to_batch(x, model->device);
    GB_CHECK(prototype_weight <= 0.f || prototypes, "counterfactual: prototype_weight > 0 needs prototypes (one image of "
             "the target class per input, as x)");
    const Tensor protos = prototype_weight > 0.f ? to_batch(*prototypes, model->device, "prototypes") : Tensor();
    std::vector<explain::Counterfactual> cf;
    {
        nb::gil_scoped_release release;
        explain::check_counterfactual_targets(*model->net, in, targets);
        cf = explain::counterfactuals(*model->net, in, targets, o, protos);
    }
    nb::list out;
    for (size_t n = 0; n < cf.size(); ++n) {
        const auto& c = cf[n];
        const Tensor original = in.narrow(static_cast<int64_t>(n), 1).to(Device::cpu()).view(c.input.shape());
        const Tensor input = c.input.to(Device::cpu());
        Tensor difference(input.shape(), DType::Float32);
        const float* a = input.data<float>();
        const float* b = original.data<float>();
        for (int64_t k = 0; k < input.numel(); ++k) difference.data<float>()[k] = a[k] - b[k];
        nb::dict d;
        d["counterfactual"] = to_numpy(input);
        d["difference"] = to_numpy(difference);
        d["probabilities"] = to_numpy(c.probabilities);
        d["target"] = c.target;
        d["new_class"] = c.new_class;
        d["target_probability"] = c.target_probability;
        d["distance"] = c.distance;
        d["steps"] = c.steps;
        d["reached"] = c.reached;
        out.append(d);
    }
    return out;
}

}  // namespace

void bind_counterfactual(nb::module_& m) {
    m.def("_counterfactuals", &counterfactuals, nb::arg("model"), nb::arg("x"), nb::arg("targets"), nb::arg("steps"),
          nb::arg("lr"), nb::arg("distance_weight"), nb::arg("confidence"), nb::arg("prototype_weight"),
          nb::arg("prototypes").none(), nb::arg("low").none(), nb::arg("high").none(),
          "Counterfactuals (gb.counterfactual): one dict per input.");
}

}  // namespace gb::python
