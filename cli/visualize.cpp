// `glassbox visualize`: model-level pictures. Activation maximisation for
// classes (default: all) or for channels of a layer, as one captioned image
// grid; optionally the channel importance (mean |activation|) of every Conv2d
// and Linear layer on the first N images of a dataset.
// In order: options checked; --out made (OutputDir: removed again if the command fails); the checkpoint and its
// conventions (normalisation, class names for the captions); activation maximisation of all objectives in the
// model's normalised input space, bounded by the pixel range after normalisation (preset.low/high); the images
// turned back into [0, 1] pixels and written as activation_maximisation.png, each objective's start and end value
// on stdout. With --importance N: explain::channel_importance over the first N test images, the top 5 per layer on
// stdout and every channel in channel_importance.csv. Runs on the CPU (there is no --device).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/explain_inputs.h"
#include "core/factory.h"
#include "core/parallel.h"
#include "explain/model_methods.h"
#include "explain/plot.h"
#include "io/dataset.h"
#include "io/file_util.h"
#include "models/registry.h"

namespace gb::cli {

namespace {

struct VisualizeOptions {
    std::string checkpoint, model, out = "visualize", layer, data = "fashion-mnist", data_dir;
    std::vector<int64_t> classes, channels;
    int64_t steps = 200, upscale = 4, importance = 0, columns = 5;
    float lr = 0.1f, l2 = 0.01f, blur_sigma = 0.5f;
    int64_t jitter = 1, blur_every = 4;
    uint64_t seed = 0;
    int threads = 0;
};

// Tiles of [C, H, W] images in [0, 1], each enlarged and captioned, `columns` per row.
explain::Image grid(const std::vector<Tensor>& tiles, const std::vector<std::string>& captions, int64_t upscale, int64_t columns) {
    const int64_t n = static_cast<int64_t>(tiles.size()), cols = std::min(columns, n), rows = (n + cols - 1) / cols;
    const int64_t tw = tiles[0].dim(2) * upscale, th = tiles[0].dim(1) * upscale, pad = 8, caption = 22;
    explain::Image im;
    im.width = cols * (tw + pad) + pad;
    im.height = rows * (th + caption + pad) + pad;
    im.pixels.assign(static_cast<size_t>(im.width * im.height * 3), 255);
    for (int64_t i = 0; i < n; ++i) {
        const explain::Image tile = explain::upscale_nearest(explain::to_rgb8(tiles[static_cast<size_t>(i)]), upscale);
        const int64_t x0 = pad + (i % cols) * (tw + pad), y0 = pad + (i / cols) * (th + caption + pad);
        for (int64_t y = 0; y < th; ++y)
            std::copy(tile.pixels.begin() + y * tw * 3, tile.pixels.begin() + (y + 1) * tw * 3,
                      im.pixels.begin() + ((y0 + y) * im.width + x0) * 3);
        const std::string& c = captions[static_cast<size_t>(i)];
        explain::draw_text(im, static_cast<double>(x0) + (static_cast<double>(tw) - explain::text_width(c, 1.5)) / 2,
                           static_cast<double>(y0 + th + 6), c, {31, 36, 48}, 1.5);
    }
    return im;
}

void run_visualize(const VisualizeOptions& o) {
    GB_CHECK(o.layer.empty() == o.channels.empty(), "visualize: --layer and --channel go together (channels of that layer)");
    GB_CHECK(o.layer.empty() || o.classes.empty(), "visualize: give either --class or --layer with --channel, not both");
    OutputDir out_dir(o.out);
    models::Checkpoint ck = models::load_checkpoint(o.checkpoint, o.model);
    const auto& cfg = ck.model->config();
    ExplainInputs in;
    read_checkpoint_conventions(ck, in, std::cerr);
    const explain::PresetOptions preset = preset_options(in);

    std::vector<explain::Objective> objectives;
    std::vector<std::string> captions;
    if (!o.layer.empty()) {
        for (int64_t c : o.channels) {
            objectives.push_back({o.layer, c});
            captions.push_back(o.layer + " #" + std::to_string(c));
        }
    } else {
        std::vector<int64_t> classes = o.classes;
        if (classes.empty())
            for (int64_t k = 0; k < cfg.num_classes; ++k) classes.push_back(k);
        for (int64_t k : classes) {
            GB_CHECK(k >= 0 && k < cfg.num_classes, "visualize: --class ", k, " is outside the model's ", cfg.num_classes, " classes");
            objectives.push_back({"", k});
            captions.push_back(in.class_names[static_cast<size_t>(k)]);
        }
    }
    explain::ActivationMaxOptions ao;
    ao.steps = o.steps;
    ao.lr = o.lr;
    ao.l2 = o.l2;
    ao.jitter = o.jitter;
    ao.blur_every = o.blur_every;
    ao.blur_sigma = o.blur_sigma;
    ao.low = *preset.low;
    ao.high = *preset.high;
    ao.seed = o.seed;
    std::cerr << "visualize: activation maximisation of " << objectives.size() << " objectives, " << o.steps << " steps\n";
    const explain::ActivationMaxResult r =
        explain::activation_maximisation(*ck.model, Shape{cfg.in_channels, cfg.input_size, cfg.input_size}, objectives, ao);

    // Back to pixels in [0, 1] for the pictures.
    std::vector<Tensor> tiles;
    const int64_t C = cfg.in_channels, plane = cfg.input_size * cfg.input_size;
    const auto v = r.images.to_vector<float>();
    for (size_t i = 0; i < objectives.size(); ++i) {
        std::vector<float> px(static_cast<size_t>(C * plane));
        for (int64_t k = 0; k < C * plane; ++k)
            px[static_cast<size_t>(k)] = v[i * static_cast<size_t>(C * plane) + static_cast<size_t>(k)] * in.stddev[static_cast<size_t>(k / plane)] +
                                         in.mean[static_cast<size_t>(k / plane)];
        tiles.push_back(from_vector(px, Shape{C, cfg.input_size, cfg.input_size}));
    }
    const std::string png = o.out + "/activation_maximisation.png";
    explain::save_png(png, grid(tiles, captions, o.upscale, o.columns));
    std::cout << "objective                      start -> end\n";
    for (size_t i = 0; i < objectives.size(); ++i)
        std::cout << std::left << std::setw(28) << captions[i] << std::right << std::fixed << std::setprecision(3) << std::setw(9)
                  << r.start[i] << " -> " << r.value[i] << "\n";
    std::cout << "written: " << png << "\n";

    if (o.importance > 0) {
        const io::Dataset d = io::load_dataset(o.data, io::Split::Test, o.data_dir);
        GB_CHECK(o.importance <= d.size(), "visualize: --importance ", o.importance, " exceeds the ", d.size(), " test images of ", o.data);
        std::vector<int64_t> indices(static_cast<size_t>(o.importance));
        for (size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<int64_t>(i);
        ExplainInputs data = in;
        load_samples(o.data, o.data_dir, "test", indices, cfg, data);
        normalize_inputs(data);
        const auto imp = explain::channel_importance(*ck.model, data.normalized);
        std::ostringstream csv;
        csv << "layer,rank,channel,mean_abs_activation\n";
        std::cout << "\nchannel importance (mean |activation| over " << o.importance << " test images), top 5 per layer:\n";
        for (const auto& l : imp) {
            std::cout << "  " << std::left << std::setw(14) << l.layer << std::right;
            for (size_t k = 0; k < l.channels.size(); ++k) {
                csv << l.layer << "," << k << "," << l.channels[k].first << "," << l.channels[k].second << "\n";
                if (k < 5) std::cout << "  #" << l.channels[k].first << " " << std::setprecision(3) << l.channels[k].second;
            }
            std::cout << "\n";
        }
        const std::string path = o.out + "/channel_importance.csv";
        io::write_file_atomic(path, [&](std::ostream& out) { out << csv.str(); });
        std::cout << "written: " << path << "\n";
    }
    out_dir.done();
}

}  // namespace

void add_visualize_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("visualize", "Activation maximisation per class (or channel) as an image grid; channel importance");
    auto o = std::make_shared<VisualizeOptions>();
    cmd->add_option("--checkpoint", o->checkpoint, "A model.safetensors written by glassbox train")->required()->check(CLI::ExistingFile);
    cmd->add_option("--model", o->model, "Model for a state dict without glassbox metadata (default: inferred from its tensors, e.g. a torchvision VGG): " + models::model_names_text());
    cmd->add_option("--out", o->out, "Output folder")->capture_default_str();
    cmd->add_option("--class", o->classes, "Classes to visualise (default: all)")->check(integer(0, kMaxCount));
    cmd->add_option("--layer", o->layer, "Visualise channels of this layer (e.g. features.2) instead of classes");
    cmd->add_option("--channel", o->channels, "Channels of --layer")->check(integer(0, kMaxCount));
    cmd->add_option("--steps", o->steps, "Gradient-ascent steps")->capture_default_str()->check(integer(0, 1000000));
    cmd->add_option("--lr", o->lr, "Step size (per step, relative to the mean |gradient|)")->capture_default_str()->check(number(0, 1e6, true));
    cmd->add_option("--l2", o->l2, "L2 pull towards the middle of the input range")->capture_default_str()->check(number(0, 1e6));
    cmd->add_option("--jitter", o->jitter, "Random shift (pixels) before each gradient")->capture_default_str()->check(integer(0, 4096));
    cmd->add_option("--blur-every", o->blur_every, "Blur every N steps (0: never)")->capture_default_str()->check(integer(0, 1000000));
    cmd->add_option("--blur-sigma", o->blur_sigma, "Gaussian sigma of that blur (pixels)")->capture_default_str()->check(number(0, 1000, true));
    cmd->add_option("--seed", o->seed, "Seed of the starting noise and the jitter")->capture_default_str();
    cmd->add_option("--upscale", o->upscale, "Nearest-neighbour enlargement of each tile")->capture_default_str()->check(integer(1, 32));
    cmd->add_option("--columns", o->columns, "Tiles per row")->capture_default_str()->check(integer(1, 1024));
    cmd->add_option("--importance", o->importance, "Also rank channels by mean |activation| over the first N test images (0: off)")
        ->capture_default_str()
        ->check(integer(0, kMaxCount));
    cmd->add_option("--data", o->data, "Dataset for --importance")->capture_default_str();
    cmd->add_option("--data-dir", o->data_dir, "Where to look for the dataset");
    cmd->add_option("--threads", o->threads, "CPU threads (0: all cores)")->check(integer(0, kMaxThreads));
    cmd->callback([o] {
        if (o->threads > 0) set_num_threads(o->threads);
        run_visualize(*o);
    });
}

}  // namespace gb::cli
