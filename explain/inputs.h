// Inputs to explain (`glassbox explain`, `evaluate`, `visualize`): image files, arrays or dataset samples,
// brought to the model's input by torchvision's evaluation transform
// (io/transforms.h: antialiased resize, centre crop) with a note for each
// conversion, plus the normalisation and class names (checkpoint metadata,
// --normalize / --labels, a dataset's names, defaults).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "../core/tensor.h"
#include "composite.h"
#include "../io/dataset.h"
#include "../models/checkpoint.h"
#include "../models/registry.h"

namespace gb::explain {

// The input options as typed (empty: the defaults).
struct InputOptions {
    std::string resize;     // "N" (shorter side), "WxH" (stretch), "0" (off)
    std::string crop;       // "N", "WxH", "0"
    std::string normalize;  // "M1,M2,M3/S1,S2,S3" or "none"
    std::string labels;     // file: one class name per line
};

struct ExplainInputs {
    Tensor raw;         // [N, C, H, W] in [0, 1], as shown to a person (after resize and crop)
    Tensor normalized;  // what the model receives
    std::vector<std::string> names;        // the image's path, "DATA SPLIT #i" or "ARRAY.npy [n]"
    std::vector<int32_t> labels;           // true class, -1 when unknown
    std::vector<std::vector<std::string>> notes;  // per input: the conversions made while loading it
    std::vector<std::string> class_names;
    std::string class_names_source;        // "checkpoint", "--labels FILE", "dataset NAME", "indices"
    std::vector<float> mean, stddev;       // per channel
    std::string normalization_source;      // "checkpoint", "--normalize", "ImageNet default", "none"
    std::string preprocessing;             // the image-file transform, for the report ("" for dataset samples)
};

// Normalisation (--normalize, else the checkpoint's, else ImageNet's for a 3-channel
// 224x224 model, else none) and class names (--labels, else the checkpoint's, else
// indices), with a note on `notes` for each default taken or value overridden.
void read_checkpoint_conventions(const models::Checkpoint& ck, ExplainInputs& in, std::ostream& notes,
                                 const InputOptions& options = {});
// Class names of dataset `data` (when they are not indices and their count matches)
// replace index names; nothing changes when the checkpoint or --labels named the classes.
void use_dataset_class_names(const std::string& data, const std::vector<std::string>& names, ExplainInputs& in,
                             std::ostream& notes);
// One class name per line; trailing blank lines are ignored; gb::Error naming the file
// and both counts unless there are exactly `classes` names.
std::vector<std::string> read_labels(const std::string& path, int64_t classes);

// Image files: decoded (alpha onto white, 16-bit, grey/RGB conversion), resized and
// centre-cropped to the model's input (defaults: 224x224 models resize the shorter
// side to 256 and crop 224, as torchvision; other sizes S resize the shorter side to
// S and crop S). Each conversion is a note on `notes` and in in.notes.
void load_images(const std::vector<std::string>& paths, const models::VggConfig& cfg, ExplainInputs& in,
                 std::ostream& notes, const InputOptions& options = {});
// A NumPy array of pixels in [0, 1], float32 [N, C, H, W] or [C, H, W], of the model's
// channels and size (normalised afterwards like images): exact inputs for scripts and tests.
void load_array(const std::string& path, const models::VggConfig& cfg, ExplainInputs& in);
// Samples `indices` of a dataset split; with `notes`, the dataset's class names are used as by
// use_dataset_class_names (and the note goes there). The dataset must have the model's classes.
void load_samples(const std::string& data, const std::string& data_dir, const std::string& split,
                  const std::vector<int64_t>& indices, const models::VggConfig& cfg, ExplainInputs& in,
                  std::ostream* notes = nullptr);
// The same from a split already loaded (`data` and `split` name it in messages and sample names).
void load_samples(const io::Dataset& d, const std::string& data, const std::string& split,
                  const std::vector<int64_t>& indices, const models::VggConfig& cfg, ExplainInputs& in,
                  std::ostream* notes = nullptr);
// What a plain state dict (no glassbox metadata, so no input size of its own) is built for when a
// dataset's samples are its inputs: the dataset's channels, image size and classes (load_checkpoint's
// options; a glassbox checkpoint ignores them). Without them a plain state dict of a small VGG would
// be read as torchvision's 224x224 layout.
models::ModelOptions model_options_for(const io::Dataset& d);
// Fills `normalized` from `raw`.
void normalize_inputs(ExplainInputs& in);
// Composite options for these inputs: ZBox bounds (and `low`, the value of a black pixel)
// = the pixel range [0, 1] after normalisation, per channel.
PresetOptions preset_options(const ExplainInputs& in);

}  // namespace gb::explain
