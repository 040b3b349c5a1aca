// Inputs for `glassbox explain`: image files or dataset samples, brought to the
// model's channel count and size (with a note for each conversion), plus the
// normalisation and class names recorded in the checkpoint.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "explain/composite.h"
#include "models/checkpoint.h"

namespace gb::cli {

struct ExplainInputs {
    Tensor raw;         // [N, C, H, W] in [0, 1], as shown to a person
    Tensor normalized;  // what the model receives
    std::vector<std::string> names;        // "input 0: path" / "test #12"
    std::vector<int32_t> labels;           // true class, -1 when unknown
    std::vector<std::string> class_names;
    std::vector<float> mean, stddev;       // per channel (identity when the checkpoint records none)
};

// Normalisation and class names from the checkpoint's metadata (defaults otherwise).
void read_checkpoint_conventions(const models::Checkpoint& ck, ExplainInputs& in, std::ostream& notes);

// Image files: converted to the model's channels and resized (bilinear) to its input size, with a note.
void load_images(const std::vector<std::string>& paths, const models::VggConfig& cfg, ExplainInputs& in,
                 std::ostream& notes);
// A NumPy array of pixels in [0, 1], float32 [N, C, H, W] or [C, H, W], of the model's
// channels and size (normalised afterwards like images): exact inputs for scripts and tests.
void load_array(const std::string& path, const models::VggConfig& cfg, ExplainInputs& in);
// Samples `indices` of a dataset split.
void load_samples(const std::string& data, const std::string& data_dir, const std::string& split,
                  const std::vector<int64_t>& indices, const models::VggConfig& cfg, ExplainInputs& in);
// Fills `normalized` from `raw`.
void normalize_inputs(ExplainInputs& in);
// Composite options for these inputs: ZBox bounds (and `low`, the value of a black pixel)
// = the pixel range [0, 1] after normalisation, per channel.
explain::PresetOptions preset_options(const ExplainInputs& in);

}  // namespace gb::cli
