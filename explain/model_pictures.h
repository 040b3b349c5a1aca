// Model-level pictures and tables (`glassbox visualize`, callable without the program): activation maximisation
// of classes or of channels of a layer, turned back into pixels and laid out as one captioned grid and a report; and channel
// importance (mean |activation|) over the first images of a dataset's test split, as a CSV table.
//
// maximise_activations runs explain::activation_maximisation in the model's normalised input space, bounded by
// the pixel range [0, 1] after the inputs' normalisation (preset_options: low/high), then undoes the
// normalisation (x * std + mean per channel), so the pictures are pixels in [0, 1] as a person sees them.
#pragma once

#include <string>
#include <vector>

#include "heatmap.h"
#include "inputs.h"
#include "model_methods.h"
#include "../models/vgg.h"

namespace gb::explain {

// What to maximise: the given classes (all when empty), or `channels` of `layer` when a layer is named (their centre
// unit when `centre`, else their mean); each with its caption (a class name, "layer #channel"). gb::Error for a
// class outside the model's.
void visualization_objectives(const std::vector<int64_t>& classes, const std::string& layer,
                              const std::vector<int64_t>& channels, bool centre, const models::VggConfig& cfg,
                              const std::vector<std::string>& class_names, std::vector<Objective>& objectives,
                              std::vector<std::string>& captions);

struct ActivationPictures {
    Tensor images;                     // [B, C, H, W] pixels in [0, 1] on the CPU, one per objective
    std::vector<double> start, value;  // the objective at the start and at the end
    ActivationMaxOptions options;      // as run: low / high set from the conventions
};

// options.low / high are set from `conventions` (the normalisation of the model's inputs).
// Runs on the device of the model's parameters.
ActivationPictures maximise_activations(models::Vgg& model, const ExplainInputs& conventions,
                                        const std::vector<Objective>& objectives, ActivationMaxOptions options,
                                        const ActivationMaxProgress& progress = {});

// A tile [C, H, W] (C = 1 or 3) for display: stretched from its own min..max to 0..1 (all channels together;
// a constant tile stays as it is), RGB8, enlarged `upscale` times (nearest neighbour).
Image display_tile(const Tensor& tile, int64_t upscale);

// `caption` shortened with ".." until the bitmap font draws it within `width` pixels at `scale`.
std::string fit_caption(const std::string& caption, double width, double scale);

// Tiles [B, C, H, W] in [0, 1] as display_tile shows them, `columns` per row, each captioned below (fit_caption to
// the tile's width, so captions never overlap).
Image picture_grid(const Tensor& tiles, const std::vector<std::string>& captions, int64_t upscale,
                   int64_t columns);

// What `glassbox visualize` writes into `out_dir`: activation_maximisation.png (picture_grid),
// activation_maximisation.npy ([B, C, H, W] pixels in [0, 1]) and report.html (a figure per tile captioned with
// its name and the objective before -> after, a table of the objectives, the settings of pictures.options).
struct VisualizationFiles {
    std::string out_dir, checkpoint, model_name, device = "cpu";
    int64_t upscale = 4, columns = 5;
};
// Returns the report's path.
std::string write_visualization(const VisualizationFiles& files, const std::vector<Objective>& objectives,
                                const std::vector<std::string>& captions, const ActivationPictures& pictures);

// Channel importance over the first `images` test images of dataset `data`, normalised as `conventions` say.
std::vector<LayerImportance> test_channel_importance(models::Vgg& model, const ExplainInputs& conventions,
                                                     const std::string& data, const std::string& data_dir,
                                                     int64_t images);

// "layer,rank,channel,mean_abs_activation" and a row per channel, largest first within each layer.
std::string channel_importance_csv(const std::vector<LayerImportance>& importance);

}  // namespace gb::explain
