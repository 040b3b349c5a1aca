// Checkpoints: a model's state dict (PyTorch names) in a safetensors file, with
// metadata that records the model name and configuration, so the model can be
// rebuilt from the file alone. Writes are atomic. Loading checks every tensor's
// name, dtype and shape against the model and reports all mismatches at once.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../io/safetensors.h"
#include "vgg.h"

namespace gb::models {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Model state + `extra` tensors (stored under their own names) + metadata
// (model configuration, format tag, glassbox version, and `meta`).
void save_checkpoint(const std::string& path, const Vgg& model, const std::map<std::string, std::string>& meta = {},
                     const NamedTensors& extra = {});

// Copies the file's tensors into the model's parameters and buffers. Tensors
// whose name starts with one of `ignore_prefixes`, and PyTorch's BatchNorm
// counters (`*.num_batches_tracked`), are skipped; anything else
// missing, extra, or of the wrong dtype/shape is reported (all of it) in one gb::Error.
void load_state(layers::Layer& model, const io::SafeTensors& file, const std::vector<std::string>& ignore_prefixes = {});

// Input normalisation as `glassbox train` records it ("normalize.mean" / "normalize.std",
// comma-separated per channel). read_normalization returns false when the metadata has none.
std::map<std::string, std::string> normalization_metadata(const std::vector<float>& mean, const std::vector<float>& stddev);
bool read_normalization(const std::map<std::string, std::string>& meta, const std::string& source,
                        std::vector<float>& mean, std::vector<float>& stddev);

struct Checkpoint {
    std::shared_ptr<Vgg> model;
    io::SafeTensors file;  // the file's source and metadata; its tensors are released once in the model
    const std::map<std::string, std::string>& metadata() const { return file.metadata; }
};

// Rebuilds the model from the metadata and loads its state. A plain state dict
// (e.g. torchvision's VGG saved from PyTorch, no metadata) builds `model_name`
// with `options` (load_state then reports whatever does not fit that model), or,
// with no name, the configuration infer_vgg_config reads from the tensors
// (its input_size from options, else 224 for torchvision's layout).
// `*.num_batches_tracked` tensors are ignored.
Checkpoint load_checkpoint(const std::string& path, const std::string& model_name = "",
                           const struct ModelOptions* options = nullptr);
// The same from tensors already in memory (a state dict handed over by Python); `file.source`
// names them in messages.
Checkpoint checkpoint_from(io::SafeTensors file, const std::string& model_name = "",
                           const struct ModelOptions* options = nullptr);

}  // namespace gb::models
