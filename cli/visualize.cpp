// `glassbox visualize`: model-level pictures. Activation maximisation for
// classes (default: all) or for channels of a layer (their centre unit, or their mean), as one captioned image
// grid and a report; optionally the channel importance (mean |activation|) of every Conv2d and Linear layer on
// the first N images of a dataset.
// In order: options checked; the device (a clear gb::Error when absent); --out made (OutputDir: removed again if
// the command fails); the checkpoint, moved to the device, and its conventions (normalisation, class names for the
// captions); then the library (explain/model_pictures.h): the objectives, activation maximisation in the model's
// normalised input space bounded by the pixel range after normalisation, with progress on stderr every tenth of
// --steps; the images turned back into [0, 1] pixels and written as one grid, activation_maximisation.png, as
// activation_maximisation.npy [objectives, C, H, W] and report.html (a figure per objective with its value before
// and after, the settings); each objective's start and end value on stdout. With --importance N: channel
// importance over the first N test images, the top 5 per layer on stdout and every channel in
// channel_importance.csv.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <iomanip>
#include <iostream>

#include "cli/commands.h"
#include "cli/options.h"
#include "explain/inputs.h"
#include "explain/model_pictures.h"
#include "io/file_util.h"
#include "models/registry.h"

namespace gb::cli {

namespace {

struct VisualizeOptions {
    std::string checkpoint, model, out = "visualize", layer, data = "fashion-mnist", data_dir, unit = "centre";
    std::vector<int64_t> classes, channels;
    int64_t steps = 200, upscale = 4, importance = 0, columns = 5;
    explain::ActivationMaxOptions am;
    ComputeOptions compute;
};

void run_visualize(const VisualizeOptions& o) {
    GB_CHECK(o.layer.empty() == o.channels.empty(), "visualize: --layer and --channel go together (channels of that layer)");
    GB_CHECK(o.layer.empty() || o.classes.empty(), "visualize: give either --class or --layer with --channel, not both");
    const Device device = o.compute.apply();
    OutputDir out_dir(o.out);
    models::Checkpoint ck = models::load_checkpoint(o.checkpoint, o.model);
    ck.model->to(device);
    explain::ExplainInputs in;
    explain::read_checkpoint_conventions(ck, in, std::cerr);

    std::vector<explain::Objective> objectives;
    std::vector<std::string> captions;
    explain::visualization_objectives(o.classes, o.layer, o.channels, o.unit == "centre", ck.model->config(), in.class_names,
                                      objectives, captions);
    std::cerr << "visualize: activation maximisation of " << objectives.size() << " objectives, " << o.am.steps << " steps on "
              << device.str() << "\n";
    // Progress every tenth of the steps: each objective's value at that step's (shifted) input.
    const int64_t every = std::max<int64_t>(1, o.am.steps / 10);
    const auto progress = [&](int64_t step, const std::vector<double>& values) {
        if (step % every != 0 && step != o.am.steps) return;
        std::cerr << "visualize: step " << step << "/" << o.am.steps << " objective";
        for (double v : values) std::cerr << " " << std::fixed << std::setprecision(3) << v;
        std::cerr << std::defaultfloat << "\n";
    };
    const explain::ActivationPictures r = explain::maximise_activations(*ck.model, in, objectives, o.am, progress);
    explain::VisualizationFiles files;
    files.out_dir = o.out;
    files.checkpoint = o.checkpoint;
    files.model_name = ck.model->describe();
    files.device = device.str();
    files.upscale = o.upscale;
    files.columns = o.columns;
    const std::string html = explain::write_visualization(files, objectives, captions, r);
    std::cout << "objective                      start -> end\n";
    for (size_t i = 0; i < objectives.size(); ++i)
        std::cout << std::left << std::setw(28) << captions[i] << std::right << std::fixed << std::setprecision(3) << std::setw(9)
                  << r.start[i] << " -> " << r.value[i] << "\n";
    std::cout << "written: " << o.out << "/activation_maximisation.png, " << o.out << "/activation_maximisation.npy\n";
    std::cout << "report: " << html << "\n";

    if (o.importance > 0) {
        const auto imp = explain::test_channel_importance(*ck.model, in, o.data, o.data_dir, o.importance);
        std::cout << "\nchannel importance (mean |activation| over " << o.importance << " test images), top 5 per layer:\n";
        for (const auto& l : imp) {
            std::cout << "  " << std::left << std::setw(14) << l.layer << std::right;
            for (size_t k = 0; k < std::min<size_t>(5, l.channels.size()); ++k)
                std::cout << "  #" << l.channels[k].first << " " << std::setprecision(3) << l.channels[k].second;
            std::cout << "\n";
        }
        const std::string path = o.out + "/channel_importance.csv";
        io::write_file_atomic(path, [&](std::ostream& out) { out << explain::channel_importance_csv(imp); });
        std::cout << "written: " << path << "\n";
    }
    out_dir.done();
}

}  // namespace

void add_visualize_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("visualize", "Activation maximisation per class (or channel) as an image grid; channel importance");
    auto o = std::make_shared<VisualizeOptions>();
    add_checkpoint_option(*cmd, o->checkpoint, /*required=*/true);
    add_model_option(*cmd, o->model);
    add_out_option(*cmd, o->out);
    cmd->add_option("--class", o->classes, "Classes to visualise (default: all)")->check(integer(0, kMaxCount));
    cmd->add_option("--layer", o->layer, "Visualise channels of this layer (e.g. features.2) instead of classes");
    cmd->add_option("--channel", o->channels, "Channels of --layer")->check(integer(0, kMaxCount));
    cmd->add_option("--objective", o->unit,
                    "What of a --channel is maximised: its unit at the centre of the feature map (centre) or its mean over all "
                    "positions (mean)")
        ->capture_default_str()
        ->check(CLI::IsMember({"centre", "mean"}));
    cmd->add_option("--steps", o->am.steps, "Gradient-ascent steps")->capture_default_str()->check(integer(0, 1000000));
    cmd->add_option("--lr", o->am.lr, "Step size (per step, relative to the mean |gradient| unless --no-normalize)")
        ->capture_default_str()
        ->check(number(0, 1e6, true));
    cmd->add_flag("!--no-normalize", o->am.normalize_gradient, "Step along the raw gradient instead of g / mean|g|");
    cmd->add_option("--l2", o->am.l2, "L2 decay towards the middle of the input range")->capture_default_str()->check(number(0, 1e6));
    cmd->add_option("--tv", o->am.tv, "Weight of the squared total variation penalty (0: off)")->capture_default_str()->check(number(0, 1e6));
    cmd->add_option("--jitter", o->am.jitter, "Random shift (pixels) before each gradient")->capture_default_str()->check(integer(0, 4096));
    cmd->add_option("--blur-every", o->am.blur_every, "Blur every N steps (0: never)")->capture_default_str()->check(integer(0, 1000000));
    cmd->add_option("--blur-sigma", o->am.blur_sigma, "Gaussian sigma of that blur (pixels)")->capture_default_str()->check(number(0, 1000, true));
    add_seed_option(*cmd, o->am.seed, "Seed of the starting noise and the jitter");
    cmd->add_option("--upscale", o->upscale, "Nearest-neighbour enlargement of each tile")->capture_default_str()->check(integer(1, 32));
    cmd->add_option("--columns", o->columns, "Tiles per row")->capture_default_str()->check(integer(1, 1024));
    cmd->add_option("--importance", o->importance, "Also rank channels by mean |activation| over the first N test images (0: off)")
        ->capture_default_str()
        ->check(integer(0, kMaxCount));
    add_data_options(*cmd, o->data, o->data_dir, "Dataset for --importance");
    add_compute_options(*cmd, o->compute);
    cmd->callback([o] { run_visualize(*o); });
}

}  // namespace gb::cli
