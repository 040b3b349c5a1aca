#include "models/checkpoint.h"

#include <iomanip>
#include <set>
#include <sstream>
#include <utility>

#include "core/cpu_allocator.h"
#include "core/parse.h"
#include "layers/init.h"
#include "models/cart.h"
#include "models/infer.h"
#include "models/registry.h"
#include "models/soft_tree.h"

namespace gb::models {

void save_checkpoint(const std::string& path, const Vgg& model, const std::map<std::string, std::string>& meta,
                     const NamedTensors& extra) {
    std::map<std::string, std::string> all = model.config().to_metadata();
    all["format"] = "glassbox-checkpoint";
    all["glassbox_version"] = GB_VERSION;
    for (const auto& [k, v] : meta) all[k] = v;
    NamedTensors tensors = model.state();
    tensors.insert(tensors.end(), extra.begin(), extra.end());
    io::save_safetensors(path, tensors, all);
}

void load_state(layers::Layer& model, const io::SafeTensors& file, const std::vector<std::string>& ignore_prefixes) {
    auto ignored = [&](const std::string& n) {
        // PyTorch's BatchNorm counter (int64); glassbox keeps none.
        static const std::string counter = ".num_batches_tracked";
        if (n.size() > counter.size() && n.compare(n.size() - counter.size(), counter.size(), counter) == 0) return true;
        for (const auto& p : ignore_prefixes)
            if (n.rfind(p, 0) == 0) return true;
        return false;
    };
    std::vector<std::string> problems;
    std::set<std::string> wanted;
    auto state = model.state();
    for (auto& [name, t] : state) {
        wanted.insert(name);
        if (!file.contains(name)) {
            problems.push_back("missing '" + name + "' " + t.shape().str());
            continue;
        }
        const Tensor& src = file.at(name);
        if (src.dtype() != t.dtype())
            problems.push_back("'" + name + "' is " + dtype_name(src.dtype()) + ", the model needs " +
                               dtype_name(t.dtype()));
        else if (src.shape() != t.shape())
            problems.push_back("'" + name + "' has shape " + src.shape().str() + ", the model needs " +
                               t.shape().str());
        else if (const int64_t bad = count_non_finite(src))
            problems.push_back("'" + name + "' holds " + std::to_string(bad) + " NaN or infinite value" +
                               (bad > 1 ? "s" : "") + " (a diverged or corrupt model)");
    }
    for (const auto& [name, t] : file.tensors)
        if (!wanted.count(name) && !ignored(name)) problems.push_back("unexpected '" + name + "' " + t.shape().str());
    if (!problems.empty()) {
        std::string msg;
        for (const auto& p : problems) msg += "\n  " + p;
        GB_FAIL(file.source, ": does not fit the model (", problems.size(), " problem",
                problems.size() > 1 ? "s" : "", "):", msg);
    }
    for (auto& [name, t] : state) t.copy_from(file.at(name));
}

namespace {
std::string join_floats(const std::vector<float>& v) {
    std::ostringstream s;
    s << std::setprecision(9);
    for (size_t i = 0; i < v.size(); ++i) s << (i ? "," : "") << v[i];
    return s.str();
}

// Finite numbers whose magnitude fits a float (the normalisation of pixel values).
std::vector<float> parse_floats(const std::string& text, double lo, const std::string& what) {
    std::vector<float> out;
    for (double v : parse_numbers(text, lo, 1e30, what)) out.push_back(static_cast<float>(v));
    return out;
}
}  // namespace

std::map<std::string, std::string> normalization_metadata(const std::vector<float>& mean, const std::vector<float>& stddev) {
    return {{"normalize.mean", join_floats(mean)}, {"normalize.std", join_floats(stddev)}};
}

bool read_normalization(const std::map<std::string, std::string>& meta, const std::string& source,
                        std::vector<float>& mean, std::vector<float>& stddev) {
    if (!meta.count("normalize.mean") || !meta.count("normalize.std")) return false;
    mean = parse_floats(meta.at("normalize.mean"), -1e30, source + ": metadata 'normalize.mean'");
    stddev = parse_floats(meta.at("normalize.std"), 1e-30, source + ": metadata 'normalize.std'");
    GB_CHECK(mean.size() == stddev.size(), source, ": metadata 'normalize.mean' has ", mean.size(),
             " values but 'normalize.std' has ", stddev.size());
    return true;
}

Checkpoint load_checkpoint(const std::string& path, const std::string& model_name, const ModelOptions* options) {
    return checkpoint_from(io::load_safetensors(path), model_name, options);
}

Checkpoint checkpoint_from(io::SafeTensors file, const std::string& model_name, const ModelOptions* options) {
    Checkpoint ck;
    ck.file = std::move(file);
    const auto& meta = ck.file.metadata;
    const std::string& path = ck.file.source;
    GB_CHECK(!is_soft_tree(meta) && !is_cart(meta), path, ": is a decision tree written by glassbox distill, not a "
             "network (glassbox eval scores it; the Python module loads it with glassbox.SoftTree.load)");
    // Every parameter is loaded below (or load_state fails and no model is returned).
    layers::init::SkipInit skip;
    if (meta.count("model") && meta.count("vgg.features")) {
        const VggConfig cfg = VggConfig::from_metadata(meta, path);
        GB_CHECK(model_name.empty() || model_name == cfg.name, path, " holds a '", cfg.name, "' model, not '",
                 model_name, "'");
        ck.model = std::make_shared<Vgg>(cfg);
    } else if (model_name.empty()) {
        ck.model = std::make_shared<Vgg>(infer_vgg_config(ck.file, options ? *options : ModelOptions{}));
    } else {
        ck.model = make_model(model_name, options ? *options : ModelOptions{});
    }
    load_state(*ck.model, ck.file, {"optimizer."});  // every parameter and buffer, or a gb::Error
    ck.model->eval();
    // The file's tensors are in the model now: give their memory (a VGG-16 is 553 MB) back to the system
    // rather than to the allocator's cache, where nothing of that size may ever ask for it again.
    ck.file.tensors.clear();
    cpu_alloc::empty_cache();
    return ck;
}

}  // namespace gb::models
