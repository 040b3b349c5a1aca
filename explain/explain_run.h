// Explaining a batch of inputs with any number of methods from one forward pass, and the files that show the
// result: what `glassbox explain` does after parsing its options, callable without the program.
//
// explain_batch records one Trace of the normalised inputs, refuses an input whose logits are NaN or infinite,
// resolves the target to one class per input and runs each method on that trace (explain::attribute); only
// methods that must see other inputs (the perturbation family) run forwards of their own.
// write_explanations writes, into an existing folder: input_<n>.png per input; per method <method>.npy (all
// inputs' raw maps) and, per input, <n>_<method>.png and <n>_<method>_overlay.png (a map holding NaN or infinity
// is not drawn: flagged in the report and on the log); then report.html, and run.json last (what was run, for
// scripts). <method> is the spec made file-name safe (lrp:epsilon-plus-flat -> lrp_epsilon-plus-flat).
// report.html has one card per input: the input as the model saw it (before normalisation) with its conversion
// notes and top classes, then per method its map and overlay side by side, captioned by map_caption and flagged
// by map_flag.
#pragma once

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "../core/device.h"
#include "../core/distributed.h"
#include "inputs.h"
#include "methods.h"
#include "target.h"
#include "../models/vgg.h"

namespace gb::explain {

struct BatchExplanation {
    Tensor logits;                                        // [N, classes], on the CPU
    std::vector<int32_t> classes;                         // the class explained for each input
    std::vector<std::pair<MethodSpec, Attribution>> maps;  // per method, in the order given
    std::string canonizer_note;                           // how LRP's canonizer applied ("" without an lrp method)
};

// The model moves to `device`; "explain: <spec>" goes to `log` before each method. The inputs are traced in
// batches of `batch` (0: all in one), each batch's maps from its own trace. With `comm` of P > 1 ranks (every
// rank calls it with the same inputs), batch c runs on rank c mod P and every rank returns the whole result
// (maps and logits in input order; notes and a CAM's layer from the first batch): the one-process result at
// the same `batch`, bit for bit (an input's numbers may depend on how many inputs share its batch: the GEMM
// takes another path for a few rows).
BatchExplanation explain_batch(models::Vgg& model, const ExplainInputs& in, const Target& target,
                               const std::vector<MethodSpec>& methods, const PresetOptions& preset, Device device,
                               std::ostream& log, int64_t batch = 0, const dist::Comm* comm = nullptr);

// How the files look, and what run.json and the report say was run.
struct ExplanationFiles {
    std::string out_dir;
    std::string signed_colormap = "bwr", sequential_colormap = "jet";
    int64_t upscale = 8;  // nearest-neighbour enlargement of the PNGs
    float alpha = 0.5f;   // the largest heatmap opacity in overlays (heatmap.h: opacity follows |relevance|)
    std::string checkpoint;            // the path the model came from
    std::string canonizer = "batchnorm";  // as given
    int64_t batch = 0;                    // inputs per traced batch (0: one trace), for run.json
};

// Returns report.html's path.
std::string write_explanations(const ExplanationFiles& files, const models::Vgg& model, const ExplainInputs& in,
                               const Target& target, const BatchExplanation& result, std::ostream& log);

// A file-name-safe form of a method spec: "lrp:epsilon-plus-flat" -> "lrp_epsilon-plus-flat".
std::string file_stem(const std::string& spec);

// One input's target in words, `explained` being the class resolved for it: "Ankle boot (9), the predicted
// class" (pred), "Sandal (5)", "Sandal (5) versus Sneaker (7)".
std::string target_caption(const Target& target, int32_t explained, const std::vector<std::string>& class_names);

// The caption lines of one map in report.html, below the spec itself: the method's description; what it was
// computed at (a CAM: the layer it used, and whether that is the default; LRP: the composite and the canonizer
// note); "target: " + `target`; the parameters with their values, "(default)" where the spec leaves one out.
std::vector<std::string> map_caption(const MethodSpec& spec, const Attribution& a, const std::string& target);

// What the picture of one input's map ([C, H, W]) would hide, decided from its values: "" when nothing; else a
// sentence starting "contains NaN/Inf" (not drawn), "all zero" (for a CAM: its ReLU removed every value) or
// "constant" (a tile of one colour, no structure).
std::string map_flag(const Tensor& map, const MethodSpec& spec, const Attribution& a);

}  // namespace gb::explain
