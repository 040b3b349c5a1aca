// A counterfactual for one input, end to end (`glassbox counterfactual`, callable without the program): the
// request checked against the model's prediction, an optional prototype (the nearest training image of the
// target class, Van Looveren & Klaise 2021), explain::counterfactuals in the model's normalised input space
// bounded by the pixel range after normalisation (preset_options: low/high, as activation maximisation), the
// result turned back into pixels, and the files: report.html (original, counterfactual, difference map, the
// class-probability path as an SVG line plot, distance, whether the target was reached, every parameter),
// counterfactual.npy [1, C, H, W] and difference.npy [1, C, H, W] (pixels in [0, 1]; difference = x' - x),
// probabilities.npy [steps + 1, classes], probability_path.svg and run.json (last).
#pragma once

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "inputs.h"
#include "model_methods.h"
#include "../io/dataset.h"
#include "../models/vgg.h"

namespace gb::explain {

// gb::Error unless every target is a class of the model other than its prediction for that row of x
// [N, C, H, W] ("counterfactual: ..." naming the class, with its name when `class_names` has one).
void check_counterfactual_targets(layers::Layer& model, const Tensor& x, const std::vector<int32_t>& targets,
                                  const std::vector<std::string>& class_names = {});

// The index of the image of class `label` in `data` nearest to `pixels` [C, H, W] (Euclidean, in [0, 1] pixels;
// the first of equals); gb::Error when the dataset's images have another shape or no image has that class.
int64_t nearest_of_class(const io::Dataset& data, int32_t label, const Tensor& pixels);

struct CounterfactualRun {
    Counterfactual result;        // in the model's input space (distance there too)
    int32_t original_class = 0;   // the model's prediction for the input
    Tensor original, counterfactual, difference;  // pixels [C, H, W]; difference = counterfactual - original
    Tensor prototype;             // pixels [C, H, W]; undefined without the prototype term
    std::string prototype_source; // e.g. "fashion-mnist train #1234", empty without
    double pixel_distance = 0;    // ||difference||_2 in pixels
    CounterfactualOptions options;  // as run (low and high: the pixel range after normalisation)
};

// The counterfactual of input 0 of `in` (normalised) towards `target`. `prototype`: pixels [C, H, W] of the
// target class, needed when options.prototype_weight > 0 (else ignored), described by `prototype_source`.
// Progress (about ten lines, the last when the search stops) goes to `progress`.
CounterfactualRun run_counterfactual(layers::Layer& model, const ExplainInputs& in, int32_t target,
                                     CounterfactualOptions options, const Tensor& prototype,
                                     const std::string& prototype_source, std::ostream& progress);

struct CounterfactualFiles {
    std::string out_dir, checkpoint, model_name;
    int64_t upscale = 8;
    std::string signed_colormap = "bwr";
};

// Writes the files listed above into files.out_dir; returns the report's path.
std::string write_counterfactual(const CounterfactualFiles& files, const ExplainInputs& in, const CounterfactualRun& run);

}  // namespace gb::explain
