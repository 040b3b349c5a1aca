// Model-level explanations for Python (explain/model_methods.h, explain/model_pictures.h): activation
// maximisation of classes or of channels of a layer, as `glassbox visualize` runs it (the same conventions:
// optimised in the model's input space within the normalised pixel range, returned as pixels in [0, 1]), and
// channel importance (mean |activation| per channel) over a batch the caller gives.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "arrays.h"
#include "explain/inputs.h"
#include "explain/model_pictures.h"
#include "model.h"
#include "models/checkpoint.h"

namespace gb::python {

namespace {

nb::dict activation_maximisation(const std::shared_ptr<Model>& model, const std::optional<std::vector<int64_t>>& classes,
                                 const std::optional<std::string>& layer,
                                 const std::optional<std::vector<int64_t>>& channels, const std::string& objective,
                                 int64_t steps, double lr, double l2, double tv, int64_t jitter, int64_t blur_every,
                                 double blur_sigma, bool normalize, uint64_t seed) {
    GB_CHECK(layer.has_value() == channels.has_value(), "activation_maximisation: layer and channels go together "
             "(channels of that layer)");
    GB_CHECK(!layer || !classes, "activation_maximisation: give either classes or layer with channels, not both");
    GB_CHECK(!channels || !channels->empty(), "activation_maximisation: channels is empty");
    GB_CHECK(steps >= 0 && jitter >= 0 && blur_every >= 0, "activation_maximisation: steps, jitter and blur_every must "
             "be >= 0 (got ", steps, ", ", jitter, ", ", blur_every, ")");
    GB_CHECK(lr > 0 && l2 >= 0 && blur_sigma > 0, "activation_maximisation: lr and blur_sigma must be > 0 and l2 >= 0 "
             "(got ", lr, ", ", blur_sigma, ", ", l2, ")");
    GB_CHECK(tv >= 0, "activation_maximisation: tv must be >= 0, got ", tv);
    GB_CHECK(objective == "centre" || objective == "mean", "activation_maximisation: objective must be 'centre' or 'mean', got '",
             objective, "'");
    const int64_t num_classes = model->net->config().num_classes;
    for (int64_t k : classes.value_or(std::vector<int64_t>{}))
        GB_CHECK(k >= 0 && k < num_classes, "activation_maximisation: class ", k, " is outside the model's ", num_classes,
                 " classes");
    // The program's conventions for the checkpoint (its normalisation, else ImageNet's for a 224x224 RGB model, else
    // none; its class names), read from the model's metadata; what was assumed comes back as notes.
    models::Checkpoint ck;
    ck.model = model->net;
    ck.file.metadata = model->metadata;
    explain::ExplainInputs in;
    std::ostringstream notes;
    explain::read_checkpoint_conventions(ck, in, notes);
    std::vector<explain::Objective> objectives;
    std::vector<std::string> captions;
    explain::visualization_objectives(classes.value_or(std::vector<int64_t>{}), layer.value_or(""),
                                      channels.value_or(std::vector<int64_t>{}), objective == "centre", model->net->config(), in.class_names,
                                      objectives, captions);
    explain::ActivationMaxOptions o;
    o.steps = steps;
    o.lr = static_cast<float>(lr);
    o.l2 = static_cast<float>(l2);
    o.tv = static_cast<float>(tv);
    o.normalize_gradient = normalize;
    o.jitter = jitter;
    o.blur_every = blur_every;
    o.blur_sigma = static_cast<float>(blur_sigma);
    o.seed = seed;
    explain::ActivationPictures r;
    {
        nb::gil_scoped_release release;
        r = explain::maximise_activations(*model->net, in, objectives, o);
    }
    nb::dict out;
    out["images"] = to_numpy(r.images);
    out["start"] = to_numpy(r.start);
    out["value"] = to_numpy(r.value);
    out["objectives"] = captions;
    out["notes"] = notes.str();
    return out;
}

nb::dict channel_importance(const std::shared_ptr<Model>& model, const InArray& x, const std::vector<std::string>& layers,
                            int64_t batch) {
    GB_CHECK(batch > 0, "channel_importance: batch must be > 0, got ", batch);
    const Tensor in = to_batch(x, model->device);
    std::vector<explain::LayerImportance> r;
    {
        nb::gil_scoped_release release;
        r = explain::channel_importance(*model->net, in, layers, batch);
    }
    nb::dict out;
    for (const auto& l : r) {
        std::vector<double> by_channel(l.channels.size());
        for (const auto& [c, v] : l.channels) by_channel.at(static_cast<size_t>(c)) = v;
        out[nb::str(l.layer.c_str())] = to_numpy(std::move(by_channel));
    }
    return out;
}

}  // namespace

void bind_model_level(nb::module_& m) {
    m.def("activation_maximisation", &activation_maximisation, nb::arg("model"), nb::arg("classes").none() = nb::none(),
          nb::kw_only(), nb::arg("layer").none() = nb::none(), nb::arg("channels").none() = nb::none(),
          nb::arg("objective") = "centre", nb::arg("steps") = 200, nb::arg("lr") = 0.01, nb::arg("l2") = 0.01,
          nb::arg("tv") = 0.0, nb::arg("jitter") = 1, nb::arg("blur_every") = 4, nb::arg("blur_sigma") = 0.5,
          nb::arg("normalize") = true, nb::arg("seed") = 0,
          "Activation maximisation (Erhan et al. 2009; Simonyan et al. 2014; the regularisers of Mordvintsev et al. "
          "2015, Yosinski et al. 2015, Mahendran & Vedaldi 2015 and Olah et al. 2017), as `glassbox visualize` runs "
          "it: gradient ascent from seeded noise on a class logit (`classes`, default: every class) or on `channels` of "
          "`layer` (`objective`: 'centre', the unit at the centre of the feature map, or 'mean', the mean over "
          "positions), x <- clamp(x + lr g / mean|g| - lr l2 (x - m) - lr tv dTV/dx) (`normalize=False`: lr g), the "
          "gradient taken at the input rolled by up to `jitter` pixels, a Gaussian blur (`blur_sigma`) every "
          "`blur_every` steps, within the checkpoint's normalised pixel range. Returns {'images': [B, C, H, W] "
          "pixels in [0, 1] (normalisation undone), 'start': [B], 'value': [B] (the objective before and after), "
          "'objectives': captions, 'notes': the conventions assumed}.");
    m.def("channel_importance", &channel_importance, nb::arg("model"), nb::arg("x"), nb::arg("layers") = std::vector<std::string>{},
          nb::arg("batch") = 256,
          "Channel importance: mean |activation| per channel of each Conv2d and Linear output (or of `layers`) over "
          "the batch `x` [N, C, H, W] as the model receives it, over samples and positions. Returns {layer: [channels]} "
          "(float64, indexed by channel; `np.argsort(-v)` ranks them as `glassbox visualize --importance` does).");
}

}  // namespace gb::python
