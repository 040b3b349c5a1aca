// `glassbox explain`: explain images (files, or samples of a dataset) with any
// number of methods from one forward pass; writes heatmaps and overlays (PNG),
// raw maps (.npy) and a self-contained report.html.
// In order: --list prints methods and composites (the method table, explain/method_registry.h) and stops. Otherwise the options are checked and every --method
// parsed before anything is loaded or written; --out is made (OutputDir: removed again if the command fails); the
// checkpoint, its conventions (read_checkpoint_conventions: normalisation, class names) and the inputs (--image
// files, an --array, or --index samples of --data) are loaded and normalised; one explain::Trace of the whole batch
// is recorded, and an input with non-finite logits stops the command. Then each method runs on that trace
// (explain::attribute); only methods that must see other inputs (the perturbation family) run forwards of their own.
// Files in --out: input_<n>.png per input; per method <method>.npy (all inputs' raw maps) and, per input,
// <n>_<method>.png and <n>_<method>_overlay.png (a map holding NaN or infinity is not drawn: a note in the report
// and on stderr); then report.html, and run.json last (what was run, for scripts). Prints the report's path.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/explain_inputs.h"
#include "core/factory.h"
#include "core/parallel.h"
#include "explain/heatmap.h"
#include "explain/methods.h"
#include "explain/report.h"
#include "io/dataset.h"
#include "io/file_util.h"
#include "io/npy.h"
#include "io/transforms.h"
#include "models/registry.h"

#include <nlohmann/json.hpp>

namespace gb::cli {

namespace {

struct ExplainOptions {
    std::string checkpoint, model, data, data_dir, split = "test", out = "explanations", target = "pred", device = "cpu";
    std::string canonizer = "batchnorm";
    std::vector<std::string> images, methods;
    std::string array;
    std::vector<int64_t> indices;
    std::string signed_cmap = "bwr", cam_cmap = "jet";
    int64_t upscale = 8;
    float alpha = 0.5f;
    bool list = false;
    std::string list_format = "text";
    int threads = 0;
    InputOptions input;
};

// A file-name-safe form of a method spec: "lrp:epsilon-plus-flat" -> "lrp_epsilon-plus-flat".
std::string slug(const std::string& s) {
    std::string out;
    for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_';
    return out;
}

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

// Softmax of one row of logits, best classes first.
std::vector<std::pair<int32_t, float>> ranked(const std::vector<float>& logits, int64_t row, int64_t K) {
    const float* l = logits.data() + row * K;
    const float m = *std::max_element(l, l + K);
    double z = 0;
    for (int64_t k = 0; k < K; ++k) z += std::exp(static_cast<double>(l[k] - m));
    std::vector<std::pair<int32_t, float>> out;
    for (int64_t k = 0; k < K; ++k) out.emplace_back(static_cast<int32_t>(k), static_cast<float>(std::exp(static_cast<double>(l[k] - m)) / z));
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    return out;
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
    const Device device = Device::parse(o.device);
    std::vector<explain::MethodSpec> specs;
    for (const auto& m : o.methods) specs.push_back(explain::parse_method(m));
    OutputDir out_dir(o.out);

    models::Checkpoint ck = models::load_checkpoint(o.checkpoint, o.model);
    const auto& cfg = ck.model->config();
    ExplainInputs in;
    read_checkpoint_conventions(ck, in, std::cerr, o.input);
    if (!o.images.empty()) {
        if (!o.data.empty()) use_dataset_class_names(o.data, io::known_class_names(o.data), in, std::cerr);
        load_images(o.images, cfg, in, std::cerr, o.input);
    } else if (!o.array.empty()) {
        if (!o.data.empty()) use_dataset_class_names(o.data, io::known_class_names(o.data), in, std::cerr);
        load_array(o.array, cfg, in);
    } else {
        load_samples(o.data.empty() ? "fashion-mnist" : o.data, o.data_dir, o.split, o.indices, cfg, in, &std::cerr);
    }
    const explain::Target target = explain::Target::parse(o.target, in.class_names);
    normalize_inputs(in);
    ck.model->to(device);

    explain::PresetOptions preset = preset_options(in);
    preset.canonizer = explain::parse_canonizer(o.canonizer);

    explain::Trace trace(*ck.model, in.normalized.to(device));
    const int64_t N = in.raw.dim(0), K = cfg.num_classes;
    const auto logits = trace.logits().to_vector<float>();
    for (int64_t n = 0; n < N; ++n)
        GB_CHECK(count_non_finite(trace.logits().narrow(n, 1)) == 0, in.names[static_cast<size_t>(n)],
                 ": the model's output is NaN or infinite for this input (are its values far outside the pixel range?)");
    const auto classes = explain::resolve_classes({target}, trace.logits());

    explain::Report report;
    report.title = "glassbox explanations";
    report.info = {{"Model", ck.model->describe()}, {"Checkpoint", o.checkpoint}, {"Target", target.describe(in.class_names)}};
    if (!in.preprocessing.empty()) report.info.emplace_back("Image files", in.preprocessing);
    report.info.emplace_back("Normalisation", io::Normalization{in.mean, in.stddev}.str() + " (" + in.normalization_source + ")");
    report.info.emplace_back("Class names", in.class_names_source);
    const bool any_lrp = std::any_of(specs.begin(), specs.end(), [](const auto& s) { return s.name == "lrp"; });
    const std::string canonizer_note = trace.canonizer_note(preset.canonizer);
    if (any_lrp) report.info.emplace_back("LRP", canonizer_note);
    report.signed_colormap = o.signed_cmap;
    report.sequential_colormap = o.cam_cmap;
    for (int64_t n = 0; n < N; ++n) {
        explain::ReportItem item;
        item.title = in.names[static_cast<size_t>(n)] + " (explained: " + in.class_names[static_cast<size_t>(classes[static_cast<size_t>(n)])] + ")";
        item.image = in.raw.narrow(n, 1).view(Shape{in.raw.dim(1), in.raw.dim(2), in.raw.dim(3)});
        item.notes = in.notes[static_cast<size_t>(n)];
        const auto r = ranked(logits, n, K);
        for (size_t k = 0; k < std::min<size_t>(3, r.size()); ++k)
            item.top_classes.emplace_back(in.class_names[static_cast<size_t>(r[k].first)], r[k].second);
        const int32_t label = in.labels[static_cast<size_t>(n)];
        if (label >= 0) {
            item.true_label = in.class_names[static_cast<size_t>(label)];
            for (const auto& [c, p] : r)
                if (c == label) item.true_probability = p;
        }
        explain::save_png(o.out + "/input_" + std::to_string(n) + ".png",
                          explain::upscale_nearest(explain::to_rgb8(item.image), o.upscale));
        report.items.push_back(std::move(item));
    }
    for (const auto& spec : specs) {
        std::cerr << "explain: " << spec.text << "\n";
        const explain::Attribution a = explain::attribute(trace, spec, {target}, preset);
        io::save_npy(o.out + "/" + slug(spec.text) + ".npy", a.map);
        const std::string cmap = a.is_signed ? o.signed_cmap : o.cam_cmap;
        for (int64_t n = 0; n < N; ++n) {
            const Tensor m = a.map.narrow(n, 1).view(Shape{a.map.dim(1), a.map.dim(2), a.map.dim(3)});
            // A map with NaN or infinity has no honest picture: said in the card and on stderr, kept in the .npy.
            if (const int64_t bad = count_non_finite(m)) {
                const std::string note = spec.text + ": the map holds " + std::to_string(bad) +
                                         " NaN or infinite values; not rendered (the raw values are in the .npy)";
                std::cerr << "warning: " << in.names[static_cast<size_t>(n)] << ": " << note << "\n";
                report.items[static_cast<size_t>(n)].notes.push_back(note);
                continue;
            }
            const explain::Image heat = explain::render_heatmap(m, cmap, a.is_signed);
            const std::string stem = o.out + "/" + std::to_string(n) + "_" + slug(spec.text);
            explain::save_png(stem + ".png", explain::upscale_nearest(heat, o.upscale));
            explain::save_png(stem + "_overlay.png",
                              explain::upscale_nearest(explain::overlay(report.items[static_cast<size_t>(n)].image, heat, o.alpha), o.upscale));
            report.items[static_cast<size_t>(n)].maps.emplace_back(spec.text, explain::upscale_nearest(heat, 4));
        }
    }
    for (const auto& spec : specs) report.methods.emplace_back(spec.text, explain::method_caption(spec));
    const std::string html = o.out + "/report.html";
    explain::save_html(html, report);
    nlohmann::json inputs = nlohmann::json::array();
    for (size_t n = 0; n < in.names.size(); ++n)
        inputs.push_back({{"name", in.names[n]}, {"notes", n < in.notes.size() ? in.notes[n] : std::vector<std::string>{}}});
    const nlohmann::json run = {{"command", "explain"},
                                {"glassbox_version", GB_VERSION},
                                {"checkpoint", o.checkpoint},
                                {"model", ck.model->describe()},
                                {"target", target.describe(in.class_names)},
                                {"methods", o.methods},
                                {"inputs", inputs},
                                {"image_transform", in.preprocessing},
                                {"normalization", io::Normalization{in.mean, in.stddev}.str() + " (" + in.normalization_source + ")"},
                                {"class_names", in.class_names_source},
                                {"canonizer", o.canonizer},
                                {"canonizer_note", any_lrp ? canonizer_note : ""}};
    io::write_file_atomic(o.out + "/run.json", [&](std::ostream& out) { out << run.dump(2) << "\n"; });
    out_dir.done();
    std::cout << "report: " << html << "\n";
}

}  // namespace

void add_explain_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("explain", "Explain images with LRP, CAMs and gradient methods; write PNGs, .npy and report.html");
    auto o = std::make_shared<ExplainOptions>();
    cmd->add_option("--checkpoint", o->checkpoint, "A model.safetensors written by glassbox train (or a plain PyTorch state dict saved with safetensors)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--model", o->model, "Model for a state dict without glassbox metadata (default: inferred from its tensors, e.g. a torchvision VGG): " + models::model_names_text());
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
    cmd->add_option("--data", o->data, "Dataset to take --index samples from (default fashion-mnist); with --image or --array, only its class names");
    cmd->add_option("--data-dir", o->data_dir, "Where to look for the dataset");
    cmd->add_option("--split", o->split, "train or test")->capture_default_str()->check(CLI::IsMember({"train", "test"}));
    cmd->add_option("--index", o->indices, "Sample indices of the dataset split")->check(integer(0, kMaxCount));
    cmd->add_option("--method", o->methods, "Method spec, repeatable: lrp:epsilon-plus-flat, gradcam, saliency, ig:steps=50 ... (--list)");
    cmd->add_option("--canonizer", o->canonizer,
                    "LRP canonizer: batchnorm (merge each BatchNorm2d into the Conv2d/Linear before it, as a view; "
                    "Zennit's SequentialMergeBatchNorm) or none")
        ->capture_default_str()
        ->check(CLI::IsMember({"batchnorm", "none"}));
    cmd->add_option("--target", o->target, "pred, a class name or index, or A-B (class A versus class B)")->capture_default_str();
    cmd->add_option("--out", o->out, "Output folder")->capture_default_str();
    cmd->add_option("--colormap", o->signed_cmap, "Colormap for signed maps (bwr, seismic)")->capture_default_str();
    cmd->add_option("--cam-colormap", o->cam_cmap, "Colormap for CAMs and saliency (jet, viridis, gray)")->capture_default_str();
    cmd->add_option("--upscale", o->upscale, "Nearest-neighbour upscaling of the written PNGs")->capture_default_str()->check(integer(1, 64));
    cmd->add_option("--alpha", o->alpha, "Heatmap opacity in overlays")->capture_default_str()->check(number(0, 1));
    cmd->add_option("--device", o->device, "cpu or cuda[:N]")->capture_default_str();
    cmd->add_option("--threads", o->threads, "CPU threads (0: all cores)")->check(integer(0, kMaxThreads));
    cmd->add_flag("--list", o->list, "List methods, composites and their parameters");
    cmd->add_option("--format", o->list_format, "With --list: text, or markdown (the method table of docs/explain.md)")
        ->capture_default_str()
        ->check(CLI::IsMember({"text", "markdown"}));
    cmd->callback([o] {
        if (o->threads > 0) set_num_threads(o->threads);
        run_explain(*o);
    });
}

}  // namespace gb::cli
