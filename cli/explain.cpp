// `glassbox explain`: explain images (files, or samples of a dataset) with any
// number of methods from one forward pass; writes heatmaps and overlays (PNG),
// raw maps (.npy) and a self-contained report.html.
// In order: --list prints methods and composites (the method table, explain/method_registry.h) and stops. Otherwise the options are checked and every --method
// parsed before anything is loaded or written; --out is made (OutputDir: removed again if the command fails); the
// checkpoint, its conventions (read_checkpoint_conventions: normalisation, class names) and the inputs (--image
// files, an --array, or --index samples of --data) are loaded and normalised (explain/inputs.h). The rest is
// library code (explain/explain_run.h): explain_batch records one Trace of the whole batch (an input with
// non-finite logits stops the command) and runs each method on it; write_explanations writes, in --out,
// input_<n>.png per input; per method <method>.npy (all inputs' raw maps) and, per input, <n>_<method>.png and
// <n>_<method>_overlay.png (a map holding NaN or infinity is not drawn: flagged in the report and on stderr); then
// report.html (per input: the input as the model saw it, each method's map and overlay with captions), and
// run.json last (what was run, for scripts). Prints the report's path. --batch-size traces the inputs in
// batches; started by mpirun (-n P), the ranks take whole batches and rank 0 alone makes --out and writes the
// files, the one-process run's at the same --batch-size.
#include <CLI/CLI.hpp>

#include <iostream>
#include <optional>
#include <sstream>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/distributed.h"
#include "explain/explain_run.h"
#include "explain/inputs.h"
#include "explain/methods.h"
#include "io/dataset.h"

namespace gb::cli {

namespace {

// The inputs (explain/inputs.h).
using explain::ExplainInputs;
using explain::InputOptions;

struct ExplainOptions {
    std::string checkpoint, model, data, data_dir, split = "test", out = "explanations", target = "pred";
    std::string canonizer = "batchnorm";
    std::vector<std::string> images, methods;
    std::string array;
    std::vector<int64_t> indices;
    std::string signed_cmap = "bwr", cam_cmap = "jet";
    int64_t upscale = 8;
    int64_t batch = 0;
    float alpha = 0.5f;
    bool list = false;
    std::string list_format = "text";
    ComputeOptions compute;
    InputOptions input;
};

void print_list(const std::string& format) {
    if (format == "markdown") {  // the table of docs/explain.md
        std::cout << explain::method_table_markdown();
        return;
    }
    std::cout << "methods (--method NAME[:ARG][,KEY=VALUE...], repeatable):\n" << explain::method_list_text();
    std::cout << "\ncomposites (lrp:NAME; rules by layer; ZBox bounds shown for [0, 1] input: the program uses the\n"
                 "range of [0, 1] pixels after the model's normalisation; --canonizer none turns the BatchNorm merge off):\n";
    for (const auto& name : explain::Composite::preset_names()) {
        std::cout << "  lrp:" << name << "\n";
        std::stringstream rules(explain::Composite::preset(name, explain::PresetOptions::with_range(0.f, 1.f)).describe());
        for (std::string line; std::getline(rules, line);) std::cout << "    " << line << "\n";
    }
    std::cout << "\ntargets (--target): pred (the predicted class), a class name (--labels, the checkpoint's) or index, "
                 "or A-B (class A versus B)\n";
}

// The checkpoint's conventions, then the inputs (--image files, an --array or --index samples of `samples`,
// the --data split loaded), normalised; notes on stderr.
ExplainInputs load_inputs(const ExplainOptions& o, const models::Checkpoint& ck, const io::Dataset* samples) {
    const auto& cfg = ck.model->config();
    ExplainInputs in;
    explain::read_checkpoint_conventions(ck, in, std::cerr, o.input);
    if (!o.images.empty()) {
        if (!o.data.empty()) explain::use_dataset_class_names(o.data, io::known_class_names(o.data), in, std::cerr);
        explain::load_images(o.images, cfg, in, std::cerr, o.input);
    } else if (!o.array.empty()) {
        if (!o.data.empty()) explain::use_dataset_class_names(o.data, io::known_class_names(o.data), in, std::cerr);
        explain::load_array(o.array, cfg, in);
    } else {
        explain::load_samples(*samples, o.data.empty() ? "fashion-mnist" : o.data, o.split, o.indices, cfg, in, &std::cerr);
    }
    explain::normalize_inputs(in);
    return in;
}

void run_explain(const ExplainOptions& o) {
    if (o.list) {
        print_list(o.list_format);
        return;
    }
    GB_CHECK(!o.checkpoint.empty(), "explain: --checkpoint is required (or --list)");
    GB_CHECK(static_cast<int>(!o.images.empty()) + static_cast<int>(!o.indices.empty()) + static_cast<int>(!o.array.empty()) == 1,
             "explain: give one of --image PATH..., --data NAME --index I... or --array FILE.npy");
    GB_CHECK(!o.methods.empty(), "explain: give at least one --method (see glassbox explain --list)");
    GB_CHECK(!o.images.empty() || (o.input.resize.empty() && o.input.crop.empty()),
             "explain: --resize and --crop apply to --image files only (dataset samples and --array inputs are used as they are)");
    const Device device = o.compute.apply();
    std::vector<explain::MethodSpec> specs;
    for (const auto& m : o.methods) specs.push_back(explain::parse_method(m));
    // Under mpirun the ranks share the inputs (explain_batch with dist::world()) and rank 0 alone writes.
    const dist::Comm& ranks = dist::world();
    std::optional<OutputDir> out_dir;
    if (ranks.is_root()) out_dir.emplace(o.out);

    // Dataset samples: a plain state dict is built for the dataset's images (model_options_for).
    std::optional<io::Dataset> samples;
    models::ModelOptions mo;
    if (!o.indices.empty()) {
        samples = io::load_dataset(o.data.empty() ? "fashion-mnist" : o.data,
                                   io::split_named(o.split), o.data_dir);
        mo = explain::model_options_for(*samples);
    }
    models::Checkpoint ck = models::load_checkpoint(o.checkpoint, o.model, samples ? &mo : nullptr);
    const ExplainInputs in = load_inputs(o, ck, samples ? &*samples : nullptr);
    const explain::Target target = explain::Target::parse(o.target, in.class_names);
    explain::PresetOptions preset = explain::preset_options(in);
    preset.canonizer = explain::parse_canonizer(o.canonizer);

    // Under mpirun without --batch-size: one batch per rank, said (the one-process run at that --batch-size
    // writes the same files).
    const int64_t N = static_cast<int64_t>(in.names.size());
    const int64_t batch = o.batch > 0 || ranks.size() == 1 ? o.batch : (N + ranks.size() - 1) / ranks.size();
    if (ranks.size() > 1)
        std::cerr << "explain: " << N << " inputs in batches of " << batch << " on " << ranks.size() << " ranks"
                  << (o.batch > 0 ? "" : " (the one-process run with --batch-size " + std::to_string(batch) +
                                             " writes the same files)")
                  << "\n";
    const explain::BatchExplanation result =
        explain::explain_batch(*ck.model, in, target, specs, preset, device, std::cerr, batch, &ranks);
    if (!ranks.is_root()) return;
    explain::ExplanationFiles files;
    files.out_dir = o.out;
    files.signed_colormap = o.signed_cmap;
    files.sequential_colormap = o.cam_cmap;
    files.upscale = o.upscale;
    files.alpha = o.alpha;
    files.checkpoint = o.checkpoint;
    files.canonizer = o.canonizer;
    files.batch = batch;
    const std::string html = explain::write_explanations(files, *ck.model, in, target, result, std::cerr);
    out_dir->done();
    std::cout << "report: " << html << "\n";
}

}  // namespace

void add_explain_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("explain", "Explain images with LRP, CAMs and gradient methods; write PNGs, .npy and report.html");
    auto o = std::make_shared<ExplainOptions>();
    add_checkpoint_option(*cmd, o->checkpoint, /*required=*/false);  // not with --list
    add_model_option(*cmd, o->model);
    cmd->add_option("--image", o->images, "Image files (PNG 8/16-bit, JPEG, BMP ...); converted, resized and cropped to the model's input with a note");
    cmd->add_option("--array", o->array, "A float32 .npy array [N, C, H, W] of pixels in [0, 1] at the model's input size")
        ->check(CLI::ExistingFile);
    cmd->add_option("--resize", o->input.resize,
                    "Image files: N resizes the shorter side to N (antialiased), WxH stretches, 0 is off "
                    "(default: 256 for 224x224 models, else the model's input size)");
    cmd->add_option("--crop", o->input.crop, "Image files: N or WxH centre crop after --resize, 0 is off (default: the model's input size)");
    cmd->add_option("--normalize", o->input.normalize,
                    "MEAN/STD per channel, e.g. 0.485,0.456,0.406/0.229,0.224,0.225, or none "
                    "(default: the checkpoint's, else ImageNet's for 224x224 RGB models, else none)");
    cmd->add_option("--labels", o->input.labels, "Class names, one per line (also usable in --target)")->check(CLI::ExistingFile);
    add_data_options(*cmd, o->data, o->data_dir,
                     "Dataset to take --index samples from (default fashion-mnist); with --image or --array, only its class names");
    add_split_option(*cmd, o->split);
    cmd->add_option("--index", o->indices, "Sample indices of the dataset split")->check(integer(0, kMaxCount));
    cmd->add_option("--method", o->methods, "Method spec, repeatable: lrp:epsilon-plus-flat, gradcam, saliency, ig:steps=50 ... (--list)");
    cmd->add_option("--canonizer", o->canonizer,
                    "LRP canonizer: batchnorm (merge each BatchNorm2d into the Conv2d/Linear before it, as a view; "
                    "Zennit's SequentialMergeBatchNorm) or none")
        ->capture_default_str()
        ->check(CLI::IsMember({"batchnorm", "none"}));
    cmd->add_option("--target", o->target, "pred, a class name or index, or A-B (class A versus class B)")->capture_default_str();
    cmd->add_option("--batch-size", o->batch,
                    "Inputs per traced batch (0: all in one trace, or under mpirun one batch per rank); under mpirun "
                    "the ranks take whole batches, and the files are the one-process run's at the same --batch-size")
        ->capture_default_str()
        ->check(integer(0, kMaxBatch));
    add_out_option(*cmd, o->out);
    cmd->add_option("--colormap", o->signed_cmap, "Colormap for signed maps (bwr, seismic)")->capture_default_str();
    cmd->add_option("--cam-colormap", o->cam_cmap, "Colormap for CAMs and saliency (jet, viridis, gray)")->capture_default_str();
    cmd->add_option("--upscale", o->upscale, "Nearest-neighbour upscaling of the written PNGs")->capture_default_str()->check(integer(1, 64));
    cmd->add_option("--alpha", o->alpha,
                    "Largest heatmap opacity in overlays: a pixel's opacity is alpha x |relevance| / max|relevance| "
                    "(signed maps) or alpha x its normalised value (CAMs, saliency), so zero relevance shows the image unchanged")
        ->capture_default_str()
        ->check(number(0, 1));
    add_compute_options(*cmd, o->compute);
    cmd->add_flag("--list", o->list, "List methods, composites and their parameters");
    cmd->add_option("--format", o->list_format, "With --list: text, or markdown (the method table of docs/explain.md)")
        ->capture_default_str()
        ->check(CLI::IsMember({"text", "markdown"}));
    cmd->callback([o] { run_explain(*o); });
}

}  // namespace gb::cli
