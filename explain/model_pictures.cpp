// Activation-maximisation pictures and channel-importance tables (model_pictures.h).
#include "explain/model_pictures.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "core/factory.h"
#include "explain/plot.h"
#include "explain/report.h"
#include "io/dataset.h"
#include "io/npy.h"

namespace gb::explain {

namespace {

std::string fixed(double v, int digits) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(digits) << v;
    return o.str();
}

}  // namespace

void visualization_objectives(const std::vector<int64_t>& classes, const std::string& layer,
                              const std::vector<int64_t>& channels, bool centre, const models::VggConfig& cfg,
                              const std::vector<std::string>& class_names, std::vector<Objective>& objectives,
                              std::vector<std::string>& captions) {
    if (!layer.empty()) {
        for (int64_t c : channels) {
            objectives.push_back({layer, c, centre});
            captions.push_back(layer + " #" + std::to_string(c));
        }
        return;
    }
    std::vector<int64_t> chosen = classes;
    if (chosen.empty())
        for (int64_t k = 0; k < cfg.num_classes; ++k) chosen.push_back(k);
    for (int64_t k : chosen) {
        GB_CHECK(k >= 0 && k < cfg.num_classes, "visualize: --class ", k, " is outside the model's ", cfg.num_classes,
                 " classes");
        objectives.push_back({"", k});
        captions.push_back(class_names[static_cast<size_t>(k)]);
    }
}

ActivationPictures maximise_activations(models::Vgg& model, const ExplainInputs& conventions,
                                        const std::vector<Objective>& objectives, ActivationMaxOptions options,
                                        const ActivationMaxProgress& progress) {
    const models::VggConfig& cfg = model.config();
    const PresetOptions preset = preset_options(conventions);
    options.low = *preset.low;
    options.high = *preset.high;
    const ActivationMaxResult r =
        activation_maximisation(model, Shape{cfg.in_channels, cfg.input_size, cfg.input_size}, objectives, options, progress);
    // Back to pixels in [0, 1] for the pictures.
    ActivationPictures out;
    const int64_t C = cfg.in_channels, plane = cfg.input_size * cfg.input_size;
    auto v = r.images.to_vector<float>();  // host bookkeeping: B small pictures, once
    for (size_t k = 0; k < v.size(); ++k) {
        const auto c = (k / static_cast<size_t>(plane)) % static_cast<size_t>(C);
        v[k] = v[k] * conventions.stddev[c] + conventions.mean[c];
    }
    out.images = from_vector(v, r.images.shape());
    out.start = r.start;
    out.value = r.value;
    out.options = options;
    return out;
}

Image display_tile(const Tensor& tile, int64_t upscale) {
    auto v = tile.to_vector<float>();
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    const float low = *lo, range = *hi - *lo;
    if (range > 1e-6f)
        for (float& p : v) p = (p - low) / range;
    return upscale_nearest(to_rgb8(from_vector(v, tile.shape())), upscale);
}

std::string fit_caption(const std::string& caption, double width, double scale) {
    if (text_width(caption, scale) <= width) return caption;
    std::string c = caption;
    while (!c.empty() && text_width(c + "..", scale) > width) c.pop_back();
    return c + "..";
}

Image picture_grid(const Tensor& tiles, const std::vector<std::string>& captions, int64_t upscale,
                   int64_t columns) {
    const int64_t n = tiles.dim(0), cols = std::min(columns, n), rows = (n + cols - 1) / cols;
    const int64_t tw = tiles.dim(3) * upscale, th = tiles.dim(2) * upscale, pad = 8, caption = 22;
    const Shape tile_shape{tiles.dim(1), tiles.dim(2), tiles.dim(3)};
    const double room = static_cast<double>(tw + pad - 2);  // a caption's width at most: never reaches the next one
    Image im;
    im.width = cols * (tw + pad) + pad;
    im.height = rows * (th + caption + pad) + pad;
    im.pixels.assign(static_cast<size_t>(im.width * im.height * 3), 255);
    for (int64_t i = 0; i < n; ++i) {
        const Image tile = display_tile(tiles.narrow(i, 1).view(tile_shape), upscale);
        const int64_t x0 = pad + (i % cols) * (tw + pad), y0 = pad + (i / cols) * (th + caption + pad);
        for (int64_t y = 0; y < th; ++y)
            std::copy(tile.pixels.begin() + y * tw * 3, tile.pixels.begin() + (y + 1) * tw * 3,
                      im.pixels.begin() + ((y0 + y) * im.width + x0) * 3);
        // The large font where the caption fits, else the small one, cut with ".." where even that does not fit.
        const std::string& full = captions[static_cast<size_t>(i)];
        const double scale = text_width(full, 1.5) <= room ? 1.5 : 1.0;
        const std::string c = fit_caption(full, room, scale);
        draw_text(im, static_cast<double>(x0) + (static_cast<double>(tw) - text_width(c, scale)) / 2,
                  static_cast<double>(y0 + th + 6), c, {31, 36, 48}, scale);
    }
    return im;
}

std::string write_visualization(const VisualizationFiles& files, const std::vector<Objective>& objectives,
                                const std::vector<std::string>& captions, const ActivationPictures& pictures) {
    const std::string& dir = files.out_dir;
    const ActivationMaxOptions& o = pictures.options;
    save_png(dir + "/activation_maximisation.png", picture_grid(pictures.images, captions, files.upscale, files.columns));
    io::save_npy(dir + "/activation_maximisation.npy", pictures.images);

    Report report;
    report.title = "glassbox visualize";
    report.info = {{"Model", files.model_name}, {"Checkpoint", files.checkpoint}, {"Device", files.device}};
    report.signed_colormap.clear();
    report.sequential_colormap.clear();
    ReportSection result;
    result.title = "Activation maximisation";
    result.text = "Each picture is the input found by gradient ascent on its objective from seeded noise, shown stretched "
                  "from its own minimum to its maximum for display (activation_maximisation.npy holds the pixels, "
                  "in [0, 1]). Objective values are in the model's units (a logit, or a pre-activation), before and after "
                  "the ascent.";
    result.table = {{"picture", "objective", "before", "after", "rise"}};
    const Shape tile_shape{pictures.images.dim(1), pictures.images.dim(2), pictures.images.dim(3)};
    for (size_t i = 0; i < objectives.size(); ++i) {
        const double before = pictures.start[i], after = pictures.value[i];
        result.table.push_back({captions[i], objectives[i].str(), fixed(before, 3), fixed(after, 3), fixed(after - before, 3)});
        result.figures.push_back({captions[i] + ": " + objectives[i].str() + ", " + fixed(before, 3) + " -> " + fixed(after, 3),
                                  display_tile(pictures.images.narrow(static_cast<int64_t>(i), 1).view(tile_shape),
                                               std::max<int64_t>(files.upscale, 4))});
    }
    report.sections.push_back(std::move(result));
    ReportSection settings;
    settings.title = "Settings";
    settings.text = "x <- clamp(x + lr g / mean|g| - lr l2 (x - m) - lr tv dTV/dx, low, high) per step, g the objective's "
                    "gradient at x rolled by a random shift of up to `jitter` pixels (and rolled back), m the middle of the "
                    "input range, a Gaussian blur every `blur every` steps; in the model's input space, within the range of "
                    "[0, 1] pixels after its normalisation.";
    settings.table = {{"setting", "value", "source"},
                      {"steps", std::to_string(o.steps), ""},
                      {"learning rate lr", fixed(o.lr, 4), o.normalize_gradient ? "per step, relative to mean |g|" : "per step"},
                      {"gradient normalisation g / mean|g|", o.normalize_gradient ? "on" : "off", "Mordvintsev et al. 2015"},
                      {"L2 decay l2", fixed(o.l2, 4), "Simonyan et al. 2014"},
                      {"jitter (pixels)", std::to_string(o.jitter), "Mordvintsev et al. 2015; Olah et al. 2017"},
                      {"blur every (steps)", o.blur_every > 0 ? std::to_string(o.blur_every) : "off", "Yosinski et al. 2015"},
                      {"blur sigma (pixels)", fixed(o.blur_sigma, 3), "Yosinski et al. 2015"},
                      {"total variation tv", o.tv > 0.f ? fixed(o.tv, 4) : "off", "Mahendran & Vedaldi 2015"},
                      {"input range (model input)", "[" + fixed(o.low, 4) + ", " + fixed(o.high, 4) + "]", ""},
                      {"seed", std::to_string(o.seed), ""}};
    report.sections.push_back(std::move(settings));
    report.methods = {
        {"activation maximisation", "Erhan et al. 2009, Visualizing higher-layer features of a deep network; Simonyan et al. "
                                    "2014, Deep inside convolutional networks"},
        {"objectives", "a class logit; a channel's centre unit (\"neuron\") or its mean over positions (\"channel\"), "
                       "Olah et al. 2017, Feature Visualization (Distill)"},
        {"jitter", "Mordvintsev et al. 2015, Inceptionism (random shifts of the input)"},
        {"blur", "Yosinski et al. 2015, Understanding neural networks through deep visualization"},
        {"total variation", "Mahendran & Vedaldi 2015, Understanding deep image representations by inverting them (V^2)"}};
    const std::string html = dir + "/report.html";
    save_html(html, report);
    return html;
}

std::vector<LayerImportance> test_channel_importance(models::Vgg& model, const ExplainInputs& conventions,
                                                     const std::string& data, const std::string& data_dir,
                                                     int64_t images) {
    const io::Dataset d = io::load_dataset(data, io::Split::Test, data_dir);
    GB_CHECK(images <= d.size(), "visualize: --importance ", images, " exceeds the ", d.size(), " test images of ", data);
    std::vector<int64_t> indices(static_cast<size_t>(images));
    for (size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<int64_t>(i);
    ExplainInputs in = conventions;
    load_samples(data, data_dir, "test", indices, model.config(), in);
    normalize_inputs(in);
    const auto params = model.parameters();
    return channel_importance(model, params.empty() ? in.normalized : in.normalized.to(params.front().device()));
}

std::string channel_importance_csv(const std::vector<LayerImportance>& importance) {
    std::ostringstream csv;
    csv << "layer,rank,channel,mean_abs_activation\n";
    for (const auto& l : importance)
        for (size_t k = 0; k < l.channels.size(); ++k)
            csv << l.layer << "," << k << "," << l.channels[k].first << "," << l.channels[k].second << "\n";
    return csv.str();
}

}  // namespace gb::explain
