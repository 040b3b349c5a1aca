// `glassbox counterfactual`: the smallest change to one input that makes the model predict another class
// (Wachter et al. 2017; optional prototype term of Van Looveren & Klaise 2021).
// In order: options checked (one of --index, --image, --array; a target); --out made (OutputDir: removed again
// if the command fails); the checkpoint, its conventions (normalisation, class names) and the input, normalised
// (explain/inputs.h); the target resolved (a class index or name; gb::Error when it is outside the model's
// classes or is the model's prediction already); with --prototype-weight > 0, the prototype: the nearest
// --data train image of the target class. The rest is library code (explain/counterfactual_run.h): the search
// with progress on stderr every tenth of --steps, then in --out: counterfactual.npy, difference.npy
// ([1, C, H, W] pixels), probabilities.npy ([steps + 1, classes]), probability_path.svg, report.html and
// run.json last. Prints the outcome and the report's path. Runs on the CPU (there is no --device).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "cli/options.h"
#include "explain/counterfactual_run.h"
#include "explain/inputs.h"
#include "io/dataset.h"
#include "models/checkpoint.h"

namespace gb::cli {

namespace {

struct CounterfactualCliOptions {
    std::string checkpoint, model, data, data_dir, split = "test", out = "counterfactual", image, array, target;
    std::string colormap = "bwr";
    int64_t index = -1, upscale = 8;
    explain::CounterfactualOptions search;
    ComputeOptions compute;  // --threads only
};

// A class index or one of the class names.
int32_t parse_target(const std::string& text, const std::vector<std::string>& names) {
    if (!text.empty() && text.size() <= 9 && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return static_cast<int32_t>(std::stol(text));
    const auto it = std::find(names.begin(), names.end(), text);
    if (it != names.end()) return static_cast<int32_t>(it - names.begin());
    std::string known;
    for (size_t k = 0; k < names.size(); ++k) known += (k ? ", " : "") + std::to_string(k) + " " + names[k];
    throw Error("counterfactual: --target '" + text + "' is neither a class index nor a class name (" + known + ")");
}

void run_counterfactual_command(const CounterfactualCliOptions& o) {
    GB_CHECK(static_cast<int>(o.index >= 0) + static_cast<int>(!o.image.empty()) + static_cast<int>(!o.array.empty()) == 1,
             "counterfactual: give one input: --index I (of --data, --split), --image PATH or --array FILE.npy");
    OutputDir out_dir(o.out);
    const std::string data = o.data.empty() ? "fashion-mnist" : o.data;
    // A dataset sample: a plain state dict is built for the dataset's images (model_options_for).
    std::optional<io::Dataset> samples;
    models::ModelOptions mo;
    if (o.index >= 0) {
        samples = io::load_dataset(data, io::split_named(o.split), o.data_dir);
        mo = explain::model_options_for(*samples);
    }
    models::Checkpoint ck = models::load_checkpoint(o.checkpoint, o.model, samples ? &mo : nullptr);
    const auto& cfg = ck.model->config();
    explain::ExplainInputs in;
    explain::read_checkpoint_conventions(ck, in, std::cerr);
    if (samples) {
        explain::load_samples(*samples, data, o.split, {o.index}, cfg, in, &std::cerr);
    } else {
        if (!o.data.empty()) explain::use_dataset_class_names(o.data, io::known_class_names(o.data), in, std::cerr);
        if (!o.image.empty()) explain::load_images({o.image}, cfg, in, std::cerr);
        else explain::load_array(o.array, cfg, in);
        GB_CHECK(in.raw.dim(0) == 1, "counterfactual: ", o.array, " holds ", in.raw.dim(0), " images; give one");
    }
    explain::normalize_inputs(in);
    const int32_t target = parse_target(o.target, in.class_names);
    // Checked before anything else is read or searched (run_counterfactual checks again for its other callers).
    explain::check_counterfactual_targets(*ck.model, in.normalized, {target}, in.class_names);

    Tensor prototype;
    std::string prototype_source;
    if (o.search.prototype_weight > 0.f) {
        std::cerr << "counterfactual: finding the nearest " << data << " train image of class " << target << "\n";
        const io::Dataset train = io::load_dataset(data, io::Split::Train, o.data_dir);
        GB_CHECK(train.classes() == cfg.num_classes, data, " has ", train.classes(), " classes, the model ", cfg.num_classes,
                 ": its labels do not name the model's classes");
        const Tensor original = in.raw.narrow(0, 1).clone().view(Shape{in.raw.dim(1), in.raw.dim(2), in.raw.dim(3)});
        const int64_t i = explain::nearest_of_class(train, target, original);
        const int64_t per = original.numel();
        prototype = Tensor(original.shape(), DType::Float32);
        std::copy(train.images.data<float>() + i * per, train.images.data<float>() + (i + 1) * per, prototype.data<float>());
        prototype_source = data + " train #" + std::to_string(i);
    }
    std::cerr << "counterfactual: " << in.names[0] << " -> class " << target << ", at most " << o.search.steps << " steps\n";
    const explain::CounterfactualRun run =
        explain::run_counterfactual(*ck.model, in, target, o.search, prototype, prototype_source, std::cerr);
    explain::CounterfactualFiles files;
    files.out_dir = o.out;
    files.checkpoint = o.checkpoint;
    files.model_name = ck.model->describe();
    files.upscale = o.upscale;
    files.signed_colormap = o.colormap;
    const std::string html = explain::write_counterfactual(files, in, run);
    out_dir.done();
    const auto& c = run.result;
    std::cout << "counterfactual: class " << run.original_class << " -> " << c.new_class << " (target " << c.target << ", "
              << (c.reached ? "reached" : "NOT reached") << ") in " << c.steps << " steps, p(target) " << c.target_probability
              << ", distance " << c.distance << "\n";
    std::cout << "report: " << html << "\n";
}

}  // namespace

void add_counterfactual_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("counterfactual",
                                   "A counterfactual for one input (Wachter et al.): the nearby input classified as --target; "
                                   "report.html and .npy");
    auto o = std::make_shared<CounterfactualCliOptions>();
    add_checkpoint_option(*cmd, o->checkpoint, /*required=*/true);
    add_model_option(*cmd, o->model);
    cmd->add_option("--index", o->index, "Sample index of the dataset split")->check(integer(0, kMaxCount));
    cmd->add_option("--image", o->image, "An image file (converted, resized and cropped to the model's input with a note)");
    cmd->add_option("--array", o->array, "A float32 .npy array [1, C, H, W] or [C, H, W] of pixels in [0, 1] at the model's input size")
        ->check(CLI::ExistingFile);
    add_data_options(*cmd, o->data, o->data_dir,
                     "Dataset of --index samples and of the prototypes (default fashion-mnist); with --image or --array, "
                     "its class names");
    add_split_option(*cmd, o->split);
    cmd->add_option("--target", o->target, "The class to reach: an index or a class name")->required();
    cmd->add_option("--steps", o->search.steps, "Gradient steps at most")->capture_default_str()->check(integer(1, 1000000));
    cmd->add_option("--lr", o->search.lr, "Step size")->capture_default_str()->check(number(0, 1e6, true));
    cmd->add_option("--distance-weight", o->search.distance_weight, "lambda: weight of ||x' - x||^2")
        ->capture_default_str()
        ->check(number(0, 1e6));
    cmd->add_option("--confidence", o->search.confidence, "Stop once p(target) reaches this (and target is the top class)")
        ->capture_default_str()
        ->check(number(0, 1, true));
    cmd->add_option("--prototype-weight", o->search.prototype_weight,
                    "theta: weight of ||x' - prototype||^2, the prototype being the nearest --data train image of the target "
                    "class (Van Looveren & Klaise; 0: off)")
        ->capture_default_str()
        ->check(number(0, 1e6));
    add_out_option(*cmd, o->out);
    cmd->add_option("--colormap", o->colormap, "Colormap of the difference map (bwr, seismic)")->capture_default_str();
    cmd->add_option("--upscale", o->upscale, "Nearest-neighbour enlargement of the report's images")
        ->capture_default_str()
        ->check(integer(1, 64));
    add_compute_options(*cmd, o->compute, /*with_device=*/false);
    cmd->callback([o] {
        o->compute.apply();
        run_counterfactual_command(*o);
    });
}

}  // namespace gb::cli
