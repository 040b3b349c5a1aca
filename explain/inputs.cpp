// Inputs for `explain`, `evaluate` and `visualize` (inputs.h). A command calls read_checkpoint_conventions
// first (normalisation: --normalize, else the checkpoint's, else ImageNet's for a 224x224 RGB model, else none;
// class names: --labels, else the checkpoint's "classes" when it names the model's count, else indices), then one of
// load_images (decode, resize, centre crop as torchvision's evaluation transform, a note for every conversion),
// load_array (a .npy used exactly) or load_samples (indices of a dataset split), then normalize_inputs. Every loader
// appends to names, labels and notes, one entry per input, and sets raw [N, C, H, W] in [0, 1] (what pictures show);
// normalized is what the model receives. Nothing is written; notes go to the stream given.
#include "explain/inputs.h"

#include <nlohmann/json.hpp>

#include <fstream>

#include "core/factory.h"
#include "io/dataset.h"
#include "io/image.h"
#include "io/npy.h"
#include "io/transforms.h"

namespace gb::explain {

namespace {

std::string join_names(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
}

}  // namespace

std::vector<std::string> read_labels(const std::string& path, int64_t classes) {
    std::ifstream f(path);
    GB_CHECK(f.good(), "--labels: cannot read '", path, "'");
    std::vector<std::string> names;
    for (std::string line; std::getline(f, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        names.push_back(line);
    }
    while (!names.empty() && names.back().empty()) names.pop_back();
    GB_CHECK(static_cast<int64_t>(names.size()) == classes, "--labels '", path, "' has ", names.size(),
             " class names (one per line), the model has ", classes, " classes");
    for (size_t i = 0; i < names.size(); ++i)
        GB_CHECK(!names[i].empty(), "--labels '", path, "': line ", i + 1, " is empty (one class name per line)");
    return names;
}

void read_checkpoint_conventions(const models::Checkpoint& ck, ExplainInputs& in, std::ostream& notes,
                                 const InputOptions& options) {
    const auto& meta = ck.metadata();
    const auto& cfg = ck.model->config();
    const int64_t C = cfg.in_channels;
    std::vector<float> ck_mean, ck_std;
    const bool ck_has = models::read_normalization(meta, "checkpoint", ck_mean, ck_std);
    if (!options.normalize.empty()) {
        const io::Normalization n = io::Normalization::parse(options.normalize, C);
        in.mean = n.mean;
        in.stddev = n.stddev;
        in.normalization_source = "--normalize";
        if (ck_has && (ck_mean != n.mean || ck_std != n.stddev))
            notes << "note: --normalize " << n.str() << " overrides the checkpoint's normalisation "
                  << io::Normalization{ck_mean, ck_std}.str() << "\n";
    } else if (ck_has) {
        in.mean = ck_mean;
        in.stddev = ck_std;
        in.normalization_source = "checkpoint";
    } else if (C == 3 && cfg.input_size == 224) {
        const io::Normalization n = io::Normalization::imagenet();
        in.mean = n.mean;
        in.stddev = n.stddev;
        in.normalization_source = "ImageNet default";
        notes << "note: the checkpoint records no input normalisation; using ImageNet's mean/std " << n.str()
              << " (torchvision's, for 224x224 RGB models; --normalize overrides)\n";
    } else {
        notes << "note: the checkpoint records no input normalisation; the model gets raw [0, 1] pixels\n";
        in.mean.assign(static_cast<size_t>(C), 0.f);
        in.stddev.assign(static_cast<size_t>(C), 1.f);
        in.normalization_source = "none";
    }
    GB_CHECK(static_cast<int64_t>(in.mean.size()) == C && in.stddev.size() == in.mean.size(),
             "the checkpoint's normalisation has ", in.mean.size(), " channels, the model ", C);

    std::vector<std::string> ck_names;
    if (meta.count("classes")) {
        try {
            for (const auto& c : nlohmann::json::parse(meta.at("classes"))) ck_names.push_back(c.get<std::string>());
        } catch (const nlohmann::json::exception&) {
            ck_names.clear();
        }
        if (static_cast<int64_t>(ck_names.size()) != cfg.num_classes) ck_names.clear();
    }
    in.class_names.clear();
    if (!options.labels.empty()) {
        in.class_names = read_labels(options.labels, cfg.num_classes);
        in.class_names_source = "--labels " + options.labels;
        if (!ck_names.empty() && ck_names != in.class_names)
            notes << "note: --labels " << options.labels << " overrides the checkpoint's class names (" << join_names(ck_names)
                  << ")\n";
    } else if (!ck_names.empty()) {
        in.class_names = ck_names;
        in.class_names_source = "checkpoint";
    } else {
        for (int64_t k = 0; k < cfg.num_classes; ++k) in.class_names.push_back(std::to_string(k));
        in.class_names_source = "indices";
    }
}

void use_dataset_class_names(const std::string& data, const std::vector<std::string>& names, ExplainInputs& in,
                             std::ostream& notes) {
    if (in.class_names_source != "indices" || names.size() != in.class_names.size() || names == in.class_names) return;
    in.class_names = names;
    in.class_names_source = "dataset " + data;
    notes << "note: class names from the dataset " << data << " (the checkpoint records none)\n";
}

void load_images(const std::vector<std::string>& paths, const models::VggConfig& cfg, ExplainInputs& in,
                 std::ostream& notes, const InputOptions& options) {
    const int64_t C = cfg.in_channels, S = cfg.input_size;
    GB_CHECK(C == 1 || C == 3, "explain: images can feed models with 1 or 3 input channels, this one has ", C);
    const io::ResizeSpec resize =
        options.resize.empty() ? io::ResizeSpec{S == 224 ? 256 : S, 0, 0} : io::ResizeSpec::parse(options.resize);
    const io::CropSpec crop = options.crop.empty() ? io::CropSpec{S, S} : io::CropSpec::parse(options.crop);
    in.preprocessing = "resize: " + resize.str() + (resize.off() ? "" : " (antialiased, as torchvision's Resize)") +
                       "; crop: " + crop.str();
    std::vector<float> all;
    for (const auto& p : paths) {
        std::vector<std::string> item;
        Tensor img = io::load_image(p, C, &item);
        const int64_t H = img.dim(1), W = img.dim(2);
        const auto [h, w] = io::resized_size(H, W, resize);
        if (h != H || w != W) {
            img = io::resize_image(img, resize);
            item.push_back(std::to_string(W) + "x" + std::to_string(H) + " resized to " + std::to_string(w) + "x" +
                           std::to_string(h) + " (antialiased; " +
                           (resize.shorter > 0 ? "shorter side " + std::to_string(resize.shorter) + ", aspect ratio kept"
                                               : std::string("stretched, aspect ratio not kept")) + ")");
        }
        if (!crop.off()) {
            GB_CHECK(crop.width <= w && crop.height <= h, "explain: --crop ", crop.width, "x", crop.height,
                     " is larger than '", p, "' after resizing (", w, "x", h, "); use a larger --resize or a smaller --crop");
            if (crop.width != w || crop.height != h) {
                img = io::center_crop(img, crop.height, crop.width);
                item.push_back("centre crop " + std::to_string(crop.width) + "x" + std::to_string(crop.height) +
                               " of the " + std::to_string(w) + "x" + std::to_string(h) + " image");
            }
        }
        GB_CHECK(img.dim(1) == S && img.dim(2) == S, "explain: '", p, "' is ", img.dim(2), "x", img.dim(1),
                 " after --resize ", resize.str(), " and --crop ", crop.str(), "; the model takes ", S, "x", S);
        for (const auto& n : item) notes << "note: " << p << ": " << n << "\n";
        const auto v = img.to_vector<float>();
        all.insert(all.end(), v.begin(), v.end());
        in.names.push_back(p);
        in.labels.push_back(-1);
        in.notes.push_back(std::move(item));
    }
    in.raw = from_vector(all, Shape{static_cast<int64_t>(paths.size()), C, S, S});
}

void load_samples(const std::string& data, const std::string& data_dir, const std::string& split,
                  const std::vector<int64_t>& indices, const models::VggConfig& cfg, ExplainInputs& in,
                  std::ostream* notes) {
    load_samples(io::load_dataset(data, io::split_named(split), data_dir), data, split,
                 indices, cfg, in, notes);
}

models::ModelOptions model_options_for(const io::Dataset& d) {
    // Non-square images fit no model: the size is left to the default, and load_samples reports the mismatch.
    return models::ModelOptions{d.channels(), d.height() == d.width() ? d.height() : 0, d.classes()};
}

void load_samples(const io::Dataset& d, const std::string& data, const std::string& split,
                  const std::vector<int64_t>& indices, const models::VggConfig& cfg, ExplainInputs& in,
                  std::ostream* notes) {
    GB_CHECK(d.channels() == cfg.in_channels && d.height() == cfg.input_size && d.width() == cfg.input_size, "explain: ",
             data, " images are ", d.channels(), "x", d.height(), "x", d.width(), ", the model takes ", cfg.in_channels,
             "x", cfg.input_size, "x", cfg.input_size);
    // Labels of another class list would be compared with the model's classes as if they were the same.
    GB_CHECK(d.classes() == cfg.num_classes, data, " has ", d.classes(), " classes, the model ", cfg.num_classes,
             ": its labels do not name the model's classes");
    if (notes) use_dataset_class_names(data, d.class_names, in, *notes);
    const int64_t per = d.channels() * d.height() * d.width();
    const float* px = d.images.data<float>();
    std::vector<float> all;
    for (int64_t i : indices) {
        GB_CHECK(i >= 0 && i < d.size(), "--index ", i, " is outside the ", d.size(), " ", split, " images of ", data);
        all.insert(all.end(), px + i * per, px + (i + 1) * per);
        in.names.push_back(data + " " + split + " #" + std::to_string(i));
        in.labels.push_back(d.labels.data<int32_t>()[i]);
        in.notes.emplace_back();
    }
    in.raw = from_vector(all, Shape{static_cast<int64_t>(indices.size()), d.channels(), d.height(), d.width()});
}

void load_array(const std::string& path, const models::VggConfig& cfg, ExplainInputs& in) {
    Tensor a = io::load_npy(path);
    GB_CHECK(a.dtype() == DType::Float32 && (a.rank() == 3 || a.rank() == 4), path,
             ": expected a float32 array [N, C, H, W] or [C, H, W] of pixels in [0, 1], got ", dtype_name(a.dtype()),
             " ", a.shape().str());
    if (a.rank() == 3) a = a.view(Shape{1, a.dim(0), a.dim(1), a.dim(2)});
    const int64_t bad = count_non_finite(a);
    GB_CHECK(bad == 0, path, ": ", bad, " of the array's pixels are NaN or infinite");
    GB_CHECK(a.dim(0) > 0 && a.dim(1) == cfg.in_channels && a.dim(2) == cfg.input_size && a.dim(3) == cfg.input_size, path,
             ": the model takes [N, ", cfg.in_channels, ", ", cfg.input_size, ", ", cfg.input_size, "] arrays, got ",
             a.shape().str());
    for (int64_t n = 0; n < a.dim(0); ++n) {
        in.names.push_back(path + " [" + std::to_string(n) + "]");
        in.labels.push_back(-1);
        in.notes.emplace_back();
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

PresetOptions preset_options(const ExplainInputs& in) {
    return PresetOptions::for_normalization(in.mean, in.stddev);
}

}  // namespace gb::explain
