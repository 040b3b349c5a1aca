// Activation-maximisation pictures and channel-importance tables (model_pictures.h).
#include "explain/model_pictures.h"

#include <algorithm>
#include <sstream>

#include "core/factory.h"
#include "explain/plot.h"
#include "io/dataset.h"

namespace gb::explain {

void visualization_objectives(const std::vector<int64_t>& classes, const std::string& layer,
                              const std::vector<int64_t>& channels, const models::VggConfig& cfg,
                              const std::vector<std::string>& class_names, std::vector<Objective>& objectives,
                              std::vector<std::string>& captions) {
    if (!layer.empty()) {
        for (int64_t c : channels) {
            objectives.push_back({layer, c});
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
                                        const std::vector<Objective>& objectives, ActivationMaxOptions options) {
    const models::VggConfig& cfg = model.config();
    const PresetOptions preset = preset_options(conventions);
    options.low = *preset.low;
    options.high = *preset.high;
    const ActivationMaxResult r =
        activation_maximisation(model, Shape{cfg.in_channels, cfg.input_size, cfg.input_size}, objectives, options);
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
    return out;
}

Image picture_grid(const Tensor& tiles, const std::vector<std::string>& captions, int64_t upscale,
                   int64_t columns) {
    const int64_t n = tiles.dim(0), cols = std::min(columns, n), rows = (n + cols - 1) / cols;
    const int64_t tw = tiles.dim(3) * upscale, th = tiles.dim(2) * upscale, pad = 8, caption = 22;
    const Shape tile_shape{tiles.dim(1), tiles.dim(2), tiles.dim(3)};
    Image im;
    im.width = cols * (tw + pad) + pad;
    im.height = rows * (th + caption + pad) + pad;
    im.pixels.assign(static_cast<size_t>(im.width * im.height * 3), 255);
    for (int64_t i = 0; i < n; ++i) {
        const Image tile = upscale_nearest(to_rgb8(tiles.narrow(i, 1).view(tile_shape)), upscale);
        const int64_t x0 = pad + (i % cols) * (tw + pad), y0 = pad + (i / cols) * (th + caption + pad);
        for (int64_t y = 0; y < th; ++y)
            std::copy(tile.pixels.begin() + y * tw * 3, tile.pixels.begin() + (y + 1) * tw * 3,
                      im.pixels.begin() + ((y0 + y) * im.width + x0) * 3);
        const std::string& c = captions[static_cast<size_t>(i)];
        draw_text(im, static_cast<double>(x0) + (static_cast<double>(tw) - text_width(c, 1.5)) / 2,
                  static_cast<double>(y0 + th + 6), c, {31, 36, 48}, 1.5);
    }
    return im;
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
    return channel_importance(model, in.normalized);
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
