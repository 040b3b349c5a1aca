// Models for Python: load a checkpoint or a PyTorch state dict, build one by name,
// run it, read and write its state.
#include <nanobind/nanobind.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <optional>
#include <utility>

#include "arrays.h"
#include "core/error.h"
#include "core/rng.h"
#include "explain/perturbation.h"
#include "io/safetensors.h"
#include "model.h"
#include "models/checkpoint.h"
#include "models/registry.h"

namespace gb::python {

namespace {

models::ModelOptions options_of(int64_t in_channels, int64_t input_size, int64_t num_classes) {
    models::ModelOptions o;
    o.in_channels = in_channels;
    o.input_size = input_size;
    o.num_classes = num_classes;
    return o;
}

std::shared_ptr<Model> placed(models::Checkpoint ck, const std::string& device) {
    auto out = std::make_shared<Model>();
    out->net = std::move(ck.model);
    out->metadata = ck.file.metadata;
    out->device = Device::parse(device);
    out->net->to(out->device);
    out->net->eval();
    return out;
}

std::shared_ptr<Model> load(const std::string& path, const std::string& arch, int64_t in_channels, int64_t input_size,
                            int64_t num_classes, const std::string& device) {
    const models::ModelOptions o = options_of(in_channels, input_size, num_classes);
    models::Checkpoint ck;
    {
        nb::gil_scoped_release release;
        ck = models::load_checkpoint(path, arch, &o);
    }
    return placed(std::move(ck), device);
}

std::shared_ptr<Model> from_state_dict(const std::map<std::string, InArray>& state, const std::string& arch,
                                       int64_t in_channels, int64_t input_size, int64_t num_classes,
                                       const std::string& device) {
    io::SafeTensors file;
    file.source = "the state dict";
    // Borrowed: load_state copies every value into the model's own parameters.
    for (const auto& [name, a] : state) file.tensors.emplace_back(name, to_tensor(a));
    const models::ModelOptions o = options_of(in_channels, input_size, num_classes);
    return placed(models::checkpoint_from(std::move(file), arch, &o), device);
}

std::shared_ptr<Model> create(const std::string& name, int64_t in_channels, int64_t input_size, int64_t num_classes,
                              uint64_t seed, const std::string& device) {
    Generator gen(seed);
    auto out = std::make_shared<Model>();
    out->net = models::make_model(name, options_of(in_channels, input_size, num_classes), gen);
    out->device = Device::parse(device);
    out->net->to(out->device);
    out->net->eval();
    return out;
}

nb::dict state_dict(const Model& m) {
    nb::dict out;
    // Copies: an array on a live parameter would change under the user when the model trains.
    for (const auto& [name, t] : m.net->state()) out[nb::str(name.c_str())] = to_numpy(t.to(Device::cpu()).clone());
    return out;
}

std::vector<std::string> layer_names(Model& m) {
    std::vector<std::string> out;
    for (const auto& [path, layer] : m.net->named_layers())
        if (!path.empty()) out.push_back(path);
    return out;
}

std::optional<std::pair<std::vector<float>, std::vector<float>>> normalization(const Model& m) {
    std::vector<float> mean, stddev;
    if (!models::read_normalization(m.metadata, "the checkpoint", mean, stddev)) return std::nullopt;
    return std::make_pair(mean, stddev);
}

}  // namespace

void bind_models(nb::module_& m) {
    nb::class_<Model>(m, "Model", "A VGG-family network with the metadata of the checkpoint it came from.")
        .def(
            "__call__",
            [](Model& self, const InArray& x, int64_t batch) {
                const Tensor in = to_batch(x, self.device);
                Tensor logits;
                {
                    nb::gil_scoped_release release;
                    logits = explain::predict(*self.net, in, batch);
                }
                return to_numpy(logits);
            },
            nb::arg("x"), nb::arg("batch") = 256,
            "Logits [N, classes] of a batch [N, C, H, W] (or one image [C, H, W]), in eval mode, `batch` images at a time.")
        .def_prop_ro("name", [](const Model& self) { return self.net->config().name; }, "Registry name, e.g. 'vgg16'.")
        .def_prop_ro("num_classes", [](const Model& self) { return self.net->config().num_classes; })
        .def_prop_ro("in_channels", [](const Model& self) { return self.net->config().in_channels; })
        .def_prop_ro("input_size", [](const Model& self) { return self.net->config().input_size; },
                     "The input side the model was configured for.")
        .def_prop_ro("device", [](const Model& self) { return self.device.str(); })
        .def_prop_ro("layer_names", &layer_names, "Dotted paths of every layer ('features.0', ...), forward order.")
        .def_prop_ro("metadata", [](const Model& self) { return self.metadata; },
                     "The checkpoint's metadata (empty for a model built in Python).")
        .def_prop_ro("normalization", &normalization,
                     "(mean, std) per channel recorded in the checkpoint by `glassbox train`, or None.")
        .def("state_dict", &state_dict, "Parameters and buffers by PyTorch name (copies).")
        .def(
            "save",
            [](const Model& self, const std::string& path) {
                nb::gil_scoped_release release;
                models::save_checkpoint(path, *self.net, self.metadata);
            },
            nb::arg("path"), "Writes a checkpoint (safetensors with the model's configuration), atomically.")
        .def("__repr__", [](const Model& self) { return self.net->describe(); });

    m.def("load", &load, nb::arg("path"), nb::arg("arch") = "", nb::arg("in_channels") = 0, nb::arg("input_size") = 0,
          nb::arg("num_classes") = 0, nb::arg("device") = "cpu",
          "Loads a glassbox checkpoint, or a plain PyTorch state dict saved as safetensors (torchvision's VGG: the "
          "architecture is read from the names and shapes; `arch` names it instead).");
    m.def("from_state_dict", &from_state_dict, nb::arg("state_dict"), nb::arg("arch") = "", nb::arg("in_channels") = 0,
          nb::arg("input_size") = 0, nb::arg("num_classes") = 0, nb::arg("device") = "cpu",
          "A model from a dict of float32 arrays by PyTorch name (e.g. `{k: v.numpy() for k, v in "
          "torchvision.models.vgg16().state_dict().items()}`), as `load` reads a file.");
    m.def("create", &create, nb::arg("name"), nb::arg("in_channels") = 0, nb::arg("input_size") = 0,
          nb::arg("num_classes") = 0, nb::arg("seed") = 0, nb::arg("device") = "cpu",
          "A freshly initialised model by registry name (see `model_names()`), seeded.");
    m.def("model_names", &models::model_names, "The registry's model names.");
}

}  // namespace gb::python
