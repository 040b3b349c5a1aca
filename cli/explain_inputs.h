// The inputs of explain/inputs.h under the names cli/evaluate.cpp uses (gb::cli). They moved into the library so
// that explanations can be run without the program; this header goes once evaluate.cpp includes
// explain/inputs.h itself.
#pragma once

#include "explain/inputs.h"

namespace gb::cli {

using explain::ExplainInputs;
using explain::InputOptions;
using explain::load_array;
using explain::load_images;
using explain::load_samples;
using explain::normalize_inputs;
using explain::preset_options;
using explain::read_checkpoint_conventions;
using explain::read_labels;
using explain::use_dataset_class_names;

}  // namespace gb::cli
