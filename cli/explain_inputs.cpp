#include "cli/explain_inputs.h"

#include <nlohmann/json.hpp>

#include "core/factory.h"
#include "explain/cam.h"
#include "io/dataset.h"
#include "io/image.h"
#include "io/npy.h"

namespace gb::cli {


void read_checkpoint_conventions(const models::Checkpoint& ck, ExplainInputs& in, std::ostream& notes) {
    const auto& meta = ck.metadata();
    const auto& cfg = ck.model->config();
    if (!models::read_normalization(meta, "checkpoint", in.mean, in.stddev)) {
        notes << "note: the checkpoint records no input normalisation; the model gets raw [0, 1] pixels\n";
        in.mean.assign(static_cast<size_t>(cfg.in_channels), 0.f);
        in.stddev.assign(static_cast<size_t>(cfg.in_channels), 1.f);
    }
    GB_CHECK(static_cast<int64_t>(in.mean.size()) == cfg.in_channels && in.stddev.size() == in.mean.size(),
             "the checkpoint's normalisation has ", in.mean.size(), " channels, the model ", cfg.in_channels);
    in.class_names.clear();
    if (meta.count("classes")) {
        try {
            for (const auto& c : nlohmann::json::parse(meta.at("classes"))) in.class_names.push_back(c.get<std::string>());
        } catch (const nlohmann::json::exception&) {
            in.class_names.clear();
        }
    }
    if (static_cast<int64_t>(in.class_names.size()) != cfg.num_classes) {
        in.class_names.clear();
        for (int64_t k = 0; k < cfg.num_classes; ++k) in.class_names.push_back(std::to_string(k));
    }
}

void load_images(const std::vector<std::string>& paths, const models::VggConfig& cfg, ExplainInputs& in,
                 std::ostream& notes) {
    const int64_t C = cfg.in_channels, S = cfg.input_size;
    GB_CHECK(C == 1 || C == 3, "explain: images can feed models with 1 or 3 input channels, this one has ", C);
    std::vector<float> all;
    for (const auto& p : paths) {
        Tensor img = io::load_image(p);
        if (img.dim(0) != C) {
            notes << "note: " << p << " has " << img.dim(0) << " channel(s); converted to " << (C == 1 ? "grey" : "RGB")
                  << " for the model\n";
            img = io::load_image(p, C);
        }
        if (img.dim(1) != S || img.dim(2) != S) {
            notes << "note: " << p << " is " << img.dim(2) << "x" << img.dim(1) << "; resized to " << S << "x" << S
                  << " (bilinear)\n";
            img = explain::resize_maps(img.view(Shape{1, C, img.dim(1), img.dim(2)}), S, S).view(Shape{C, S, S});
        }
        const auto v = img.to_vector<float>();
        all.insert(all.end(), v.begin(), v.end());
        in.names.push_back(p);
        in.labels.push_back(-1);
    }
    in.raw = from_vector(all, Shape{static_cast<int64_t>(paths.size()), C, S, S});
}

void load_samples(const std::string& data, const std::string& data_dir, const std::string& split,
                  const std::vector<int64_t>& indices, const models::VggConfig& cfg, ExplainInputs& in) {
    const io::Dataset d = io::load_dataset(data, split == "train" ? io::Split::Train : io::Split::Test, data_dir);
    GB_CHECK(d.channels() == cfg.in_channels && d.height() == cfg.input_size && d.width() == cfg.input_size, "explain: ",
             data, " images are ", d.channels(), "x", d.height(), "x", d.width(), ", the model takes ", cfg.in_channels,
             "x", cfg.input_size, "x", cfg.input_size);
    const int64_t per = d.channels() * d.height() * d.width();
    const float* px = d.images.data<float>();
    std::vector<float> all;
    for (int64_t i : indices) {
        GB_CHECK(i >= 0 && i < d.size(), "explain: --index ", i, " is outside the ", d.size(), " ", split, " images of ", data);
        all.insert(all.end(), px + i * per, px + (i + 1) * per);
        in.names.push_back(data + " " + split + " #" + std::to_string(i));
        in.labels.push_back(d.labels.data<int32_t>()[i]);
    }
    in.raw = from_vector(all, Shape{static_cast<int64_t>(indices.size()), d.channels(), d.height(), d.width()});
}

void load_array(const std::string& path, const models::VggConfig& cfg, ExplainInputs& in) {
    Tensor a = io::load_npy(path);
    GB_CHECK(a.dtype() == DType::Float32 && (a.rank() == 3 || a.rank() == 4), path,
             ": expected a float32 array [N, C, H, W] or [C, H, W] of pixels in [0, 1], got ", dtype_name(a.dtype()),
             " ", a.shape().str());
    if (a.rank() == 3) a = a.view(Shape{1, a.dim(0), a.dim(1), a.dim(2)});
    GB_CHECK(a.dim(0) > 0 && a.dim(1) == cfg.in_channels && a.dim(2) == cfg.input_size && a.dim(3) == cfg.input_size, path,
             ": the model takes [N, ", cfg.in_channels, ", ", cfg.input_size, ", ", cfg.input_size, "] arrays, got ",
             a.shape().str());
    for (int64_t n = 0; n < a.dim(0); ++n) {
        in.names.push_back(path + " [" + std::to_string(n) + "]");
        in.labels.push_back(-1);
    }
    in.raw = a;
}

void normalize_inputs(ExplainInputs& in) {
    std::vector<float> v = in.raw.to_vector<float>();
    const int64_t C = in.raw.dim(1), plane = in.raw.dim(2) * in.raw.dim(3);
    for (size_t i = 0; i < v.size(); ++i) {
        const size_t c = static_cast<size_t>((static_cast<int64_t>(i) / plane) % C);
        v[i] = (v[i] - in.mean[c]) / in.stddev[c];
    }
    in.normalized = from_vector(v, in.raw.shape());
}

explain::PresetOptions preset_options(const ExplainInputs& in) {
    return explain::PresetOptions::for_normalization(in.mean, in.stddev);
}

}  // namespace gb::cli
