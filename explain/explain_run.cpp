// explain_batch and write_explanations (explain_run.h): the body of `glassbox explain`. The batch is traced once
// and every method's map comes from that trace; the files are written in a fixed order (input pictures, then per
// method its .npy and pictures, report.html, run.json last), so a script that finds run.json finds the rest.
#include "explain/explain_run.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/byte_pack.h"
#include "core/factory.h"
#include "explain/heatmap.h"
#include "explain/report.h"
#include "io/file_util.h"
#include "io/npy.h"
#include "io/transforms.h"

namespace gb::explain {

namespace {

// Softmax of one row of logits, best classes first.
std::vector<std::pair<int32_t, float>> ranked(const std::vector<float>& logits, int64_t row, int64_t K) {
    const float* l = logits.data() + row * K;
    const float m = *std::max_element(l, l + K);
    double z = 0;
    for (int64_t k = 0; k < K; ++k) z += std::exp(static_cast<double>(l[k] - m));
    std::vector<std::pair<int32_t, float>> out;
    for (int64_t k = 0; k < K; ++k)
        out.emplace_back(static_cast<int32_t>(k), static_cast<float>(std::exp(static_cast<double>(l[k] - m)) / z));
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    return out;
}

std::string normalization_text(const ExplainInputs& in) {
    return io::Normalization{in.mean, in.stddev}.str() + " (" + in.normalization_source + ")";
}

std::string number_text(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
}

// Enlargement of a map's picture in the report: small maps (28x28) become about 112 pixels wide, large ones stay.
int64_t report_factor(int64_t width) { return std::clamp<int64_t>(128 / width, 1, 8); }

// The report's header and, per input, its card: picture, explained class, top 3 classes, the true label, notes.
Report report_of(const ExplanationFiles& files, const models::Vgg& model, const ExplainInputs& in,
                 const Target& target, const BatchExplanation& result) {
    Report report;
    report.title = "glassbox explanations";
    report.info = {{"Model", model.describe()}, {"Checkpoint", files.checkpoint}, {"Target", target.describe(in.class_names)}};
    if (!in.preprocessing.empty()) report.info.emplace_back("Image files", in.preprocessing);
    report.info.emplace_back("Normalisation", normalization_text(in));
    report.info.emplace_back("Class names", in.class_names_source);
    if (!result.canonizer_note.empty()) report.info.emplace_back("LRP", result.canonizer_note);
    report.info.emplace_back("Overlays", "the heatmap over the input with opacity alpha x |relevance| / max|relevance| "
                                         "(signed maps) or alpha x the normalised value (CAMs, saliency), alpha = " +
                                             number_text(files.alpha) + ": zero relevance shows the input unchanged");
    report.signed_colormap = files.signed_colormap;
    report.sequential_colormap = files.sequential_colormap;
    const auto logits = result.logits.to_vector<float>();
    const int64_t N = in.raw.dim(0), K = result.logits.dim(1);
    for (int64_t n = 0; n < N; ++n) {
        const auto i = static_cast<size_t>(n);
        ReportItem item;
        item.title = in.names[i] + " (explained: " + in.class_names[static_cast<size_t>(result.classes[i])] + ")";
        item.image = in.raw.narrow(n, 1).view(Shape{in.raw.dim(1), in.raw.dim(2), in.raw.dim(3)});
        // in.raw: the pixels after conversion, resize and crop, before the normalisation the model sees on top.
        item.image_caption = "input as the model saw it: " + std::to_string(in.raw.dim(3)) + "x" +
                             std::to_string(in.raw.dim(2)) + (in.raw.dim(1) == 1 ? " grey" : " RGB") +
                             ", shown without the normalisation";
        item.notes = in.notes[i];
        const auto r = ranked(logits, n, K);
        for (size_t k = 0; k < std::min<size_t>(3, r.size()); ++k)
            item.top_classes.emplace_back(in.class_names[static_cast<size_t>(r[k].first)], r[k].second);
        const int32_t label = in.labels[i];
        if (label >= 0) {
            item.true_label = in.class_names[static_cast<size_t>(label)];
            for (const auto& [c, p] : r)
                if (c == label) item.true_probability = p;
        }
        report.items.push_back(std::move(item));
    }
    for (const auto& [spec, map] : result.maps) report.methods.emplace_back(spec.text, method_caption(spec));
    return report;
}

// One method's files: <method>.npy, and per input its heatmap and overlay; both also into the input's card, as a
// row with its caption and flag.
void write_method_maps(const ExplanationFiles& files, const MethodSpec& spec, const Attribution& a,
                       const ExplainInputs& in, const Target& target, const std::vector<int32_t>& classes,
                       Report& report, std::ostream& log) {
    io::save_npy(files.out_dir + "/" + file_stem(spec.text) + ".npy", a.map);
    const std::string cmap = a.is_signed ? files.signed_colormap : files.sequential_colormap;
    for (int64_t n = 0; n < a.map.dim(0); ++n) {
        const auto i = static_cast<size_t>(n);
        ReportItem& item = report.items[i];
        const Tensor m = a.map.narrow(n, 1).view(Shape{a.map.dim(1), a.map.dim(2), a.map.dim(3)});
        ReportMapRow row;
        row.method = spec.text;
        row.caption = map_caption(spec, a, target_caption(target, classes[i], in.class_names));
        row.flag = map_flag(m, spec, a);
        // A map with NaN or infinity has no honest picture: flagged in the card and on the log, kept in the .npy.
        if (count_non_finite(m)) {
            log << "warning: " << in.names[i] << ": " << spec.text << ": " << row.flag << "\n";
            item.rows.push_back(std::move(row));
            continue;
        }
        const Image heat = render_heatmap(m, cmap, a.is_signed);
        const Image over = overlay(to_rgb8(item.image), m, cmap, a.is_signed, files.alpha);
        const std::string stem = files.out_dir + "/" + std::to_string(n) + "_" + file_stem(spec.text);
        save_png(stem + ".png", upscale_nearest(heat, files.upscale));
        save_png(stem + "_overlay.png", upscale_nearest(over, files.upscale));
        row.map = upscale_nearest(heat, report_factor(heat.width));
        row.overlay = upscale_nearest(over, report_factor(over.width));
        item.rows.push_back(std::move(row));
    }
}

}  // namespace

std::string file_stem(const std::string& spec) {
    std::string out;
    for (char c : spec) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_';
    return out;
}

std::string target_caption(const Target& target, int32_t explained, const std::vector<std::string>& class_names) {
    if (target.kind == Target::Kind::Predicted)
        return Target::of(explained).describe(class_names) + ", the predicted class";
    return target.describe(class_names);
}

std::vector<std::string> map_caption(const MethodSpec& spec, const Attribution& a, const std::string& target) {
    const MethodInfo* m = find_method(spec.name);
    GB_CHECK(m, "map_caption: method '", spec.name, "' is not in the method table");
    std::vector<std::string> lines = {m->description};
    if (!a.layer.empty())
        lines.push_back("at layer " + a.layer +
                        (spec.arg.empty() ? " (the default: the last convolution's rectified output)" : ""));
    else if (!spec.arg.empty())
        lines.push_back(m->arg.what + " " + spec.arg);
    if (!a.note.empty()) lines.push_back(a.note);
    lines.push_back("target: " + target);
    std::string params;
    for (const MethodParam& p : m->params) {
        const auto given = spec.params.find(p.key);
        params += (params.empty() ? "" : ", ") + p.key + "=" +
                  (given != spec.params.end() ? given->second
                                              : (p.default_value.empty() ? p.default_help : p.default_value) + " (default)");
    }
    lines.push_back("parameters: " + (params.empty() ? std::string("none") : params));
    return lines;
}

std::string map_flag(const Tensor& map, const MethodSpec& spec, const Attribution& a) {
    const std::vector<float> v = map.to(Device::cpu()).to_vector<float>();
    const auto bad = std::count_if(v.begin(), v.end(), [](float x) { return !std::isfinite(x); });
    if (bad > 0)
        return "contains NaN/Inf: " + std::to_string(bad) + " of " + std::to_string(v.size()) +
               " values; not drawn (the raw values are in " + file_stem(spec.text) + ".npy)";
    if (v.empty()) return "";
    const bool constant = std::all_of(v.begin(), v.end(), [&](float x) { return x == v.front(); });
    if (!constant || v.size() == 1) return "";
    if (v.front() != 0.f)
        return "constant: every value is " + number_text(v.front()) + "; the picture has no structure";
    // A CAM is relu(weighted channel sum), min-max normalised: all zero means nothing positive was left, or what
    // was left had no spread.
    if (!a.layer.empty())
        return "all zero: the ReLU of " + spec.name + " removed every value at " + a.layer +
               " (no position has positive evidence for this target), or what remained was constant; the map is a "
               "flat tile and the overlay shows the input unchanged";
    return "all zero: every value of the map is 0; the map is a flat tile and the overlay shows the input unchanged";
}

namespace {

// One traced batch: inputs [first, first + count) of `in`.
BatchExplanation explain_part(models::Vgg& model, const ExplainInputs& in, int64_t first, int64_t count,
                              const Target& target, const std::vector<MethodSpec>& methods,
                              const PresetOptions& preset, Device device, std::ostream& log, const std::string& where) {
    Trace trace(model, in.normalized.narrow(first, count).to(device));
    BatchExplanation out;
    out.logits = trace.logits().to(Device::cpu());
    for (int64_t n = 0; n < count; ++n)
        GB_CHECK(count_non_finite(trace.logits().narrow(n, 1)) == 0, in.names[static_cast<size_t>(first + n)],
                 ": the model's output is NaN or infinite for this input (are its values far outside the pixel range?)");
    out.classes = resolve_classes({target}, trace.logits());
    if (std::any_of(methods.begin(), methods.end(), [](const auto& s) { return s.name == "lrp"; }))
        out.canonizer_note = trace.canonizer_note(preset.canonizer);
    for (const auto& spec : methods) {
        log << "explain: " << spec.text << where << "\n";
        out.maps.emplace_back(spec, attribute(trace, spec, {target}, preset));
    }
    return out;
}

// Batches as bytes, to send between ranks (core/byte_pack.h).
void put_tensor(dist::Packer& o, const Tensor& t) {
    o.put(t.shape().dims());
    o.put(t.to_vector<float>());
}

Tensor get_tensor(dist::Unpacker& in) {
    const Shape shape(in.get_vector<int64_t>());
    const std::vector<float> v = in.get_vector<float>();
    GB_CHECK(static_cast<int64_t>(v.size()) == shape.numel(), "explain: a rank's batches are corrupt");
    return from_vector(v, shape);
}

void pack_part(int64_t index, const BatchExplanation& b, dist::Packer& o) {
    o.put(index);
    put_tensor(o, b.logits);
    o.put(b.classes);
    o.put(b.canonizer_note);
    for (const auto& [spec, a] : b.maps) {
        o.put(static_cast<int64_t>(a.is_signed ? 1 : 0));
        o.put(a.note);
        o.put(a.layer);
        put_tensor(o, a.map);
    }
}

void unpack_parts(const std::string& bytes, const std::vector<MethodSpec>& methods,
                  std::vector<std::pair<int64_t, BatchExplanation>>& out) {
    dist::Unpacker in(bytes, "explain: a rank's batches");
    while (!in.done()) {
        const auto index = in.get<int64_t>();
        BatchExplanation b;
        b.logits = get_tensor(in);
        b.classes = in.get_vector<int32_t>();
        b.canonizer_note = in.get_string();
        for (const MethodSpec& spec : methods) {
            Attribution a;
            a.is_signed = in.get<int64_t>() != 0;
            a.note = in.get_string();
            a.layer = in.get_string();
            a.map = get_tensor(in);
            b.maps.emplace_back(spec, std::move(a));
        }
        out.emplace_back(index, std::move(b));
    }
}

// Batches in input order as one: rows concatenated; notes and flags from the first.
BatchExplanation join_parts(std::vector<BatchExplanation> parts) {
    if (parts.size() == 1) return std::move(parts[0]);
    auto cat = [](const std::vector<Tensor>& ts) {
        std::vector<float> v;
        int64_t rows = 0;
        for (const Tensor& t : ts) {
            const auto more = t.to_vector<float>();
            v.insert(v.end(), more.begin(), more.end());
            rows += t.dim(0);
        }
        std::vector<int64_t> dims = ts[0].shape().dims();
        dims[0] = rows;
        return from_vector(v, Shape(dims));
    };
    BatchExplanation out = parts[0];
    std::vector<Tensor> logits;
    out.classes.clear();
    for (const auto& p : parts) {
        logits.push_back(p.logits);
        out.classes.insert(out.classes.end(), p.classes.begin(), p.classes.end());
    }
    out.logits = cat(logits);
    for (size_t m = 0; m < out.maps.size(); ++m) {
        std::vector<Tensor> maps;
        for (const auto& p : parts) maps.push_back(p.maps[m].second.map);
        out.maps[m].second.map = cat(maps);
    }
    return out;
}

}  // namespace

BatchExplanation explain_batch(models::Vgg& model, const ExplainInputs& in, const Target& target,
                               const std::vector<MethodSpec>& methods, const PresetOptions& preset, Device device,
                               std::ostream& log, int64_t batch, const dist::Comm* comm) {
    model.to(device);
    const dist::Comm& ranks = comm ? *comm : dist::self();
    const int64_t N = in.raw.dim(0), B = batch > 0 ? std::min(batch, N) : N, batches = (N + B - 1) / B;
    GB_CHECK(N > 0, "explain: no inputs");
    // Batch c goes to rank c mod P.
    std::vector<BatchExplanation> parts;
    dist::Packer mine;
    for (int64_t c = ranks.rank(); c < batches; c += ranks.size()) {
        const int64_t first = c * B, count = std::min(B, N - first);
        const std::string where = batches == 1 ? std::string()
                                               : " (inputs " + std::to_string(first) + "-" +
                                                     std::to_string(first + count - 1) + " of " + std::to_string(N) + ")";
        BatchExplanation part = explain_part(model, in, first, count, target, methods, preset, device, log, where);
        if (ranks.size() == 1) parts.push_back(std::move(part));
        else pack_part(c, part, mine);
    }
    if (ranks.size() > 1) {
        std::vector<std::pair<int64_t, BatchExplanation>> all;
        for (const std::string& bytes : ranks.allgather(mine.bytes)) unpack_parts(bytes, methods, all);
        std::sort(all.begin(), all.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
        GB_CHECK(static_cast<int64_t>(all.size()) == batches, "explain: the ranks returned ", all.size(), " of ",
                 batches, " batches");
        for (auto& [c, part] : all) parts.push_back(std::move(part));
    }
    return join_parts(std::move(parts));
}

std::string write_explanations(const ExplanationFiles& files, const models::Vgg& model, const ExplainInputs& in,
                               const Target& target, const BatchExplanation& result, std::ostream& log) {
    Report report = report_of(files, model, in, target, result);
    for (size_t n = 0; n < report.items.size(); ++n)
        save_png(files.out_dir + "/input_" + std::to_string(n) + ".png",
                 upscale_nearest(to_rgb8(report.items[n].image), files.upscale));
    for (const auto& [spec, map] : result.maps)
        write_method_maps(files, spec, map, in, target, result.classes, report, log);
    const std::string html = files.out_dir + "/report.html";
    save_html(html, report);

    nlohmann::json inputs = nlohmann::json::array();
    for (size_t n = 0; n < in.names.size(); ++n)
        inputs.push_back({{"name", in.names[n]}, {"notes", n < in.notes.size() ? in.notes[n] : std::vector<std::string>{}}});
    std::vector<std::string> methods;
    for (const auto& [spec, map] : result.maps) methods.push_back(spec.text);
    const nlohmann::json run = {{"command", "explain"},
                                {"glassbox_version", GB_VERSION},
                                {"checkpoint", files.checkpoint},
                                {"model", model.describe()},
                                {"target", target.describe(in.class_names)},
                                {"methods", methods},
                                {"inputs", inputs},
                                {"image_transform", in.preprocessing},
                                {"normalization", normalization_text(in)},
                                {"class_names", in.class_names_source},
                                {"canonizer", files.canonizer},
                                {"batch_size", files.batch},
                                {"canonizer_note", result.canonizer_note}};
    io::write_file_atomic(files.out_dir + "/run.json", [&](std::ostream& out) { out << run.dump(2) << "\n"; });
    return html;
}

}  // namespace gb::explain
