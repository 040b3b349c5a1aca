#include "models/infer.h"

#include <cmath>
#include <map>

#include "core/error.h"

namespace gb::models {

namespace {

using Params = std::map<std::string, const Tensor*>;

// "features.12.weight" -> (features, 12, weight); false when it has another form.
bool split_name(const std::string& name, std::string& group, int64_t& index, std::string& suffix) {
    const size_t a = name.find('.');
    if (a == std::string::npos) return false;
    const size_t b = name.find('.', a + 1);
    if (b == std::string::npos || b == a + 1) return false;
    group = name.substr(0, a);
    const std::string num = name.substr(a + 1, b - a - 1);
    for (char ch : num)
        if (ch < '0' || ch > '9') return false;
    if (num.size() > 9) return false;
    index = std::stoll(num);
    suffix = name.substr(b + 1);
    return true;
}

std::string shape_of(const Params& p) {
    std::string s;
    for (const auto& [k, t] : p) s += (s.empty() ? "" : ", ") + k + " " + t->shape().str();
    return s;
}

bool is_vector(const Params& p, const std::string& key, int64_t n) {
    auto it = p.find(key);
    return it != p.end() && it->second->rank() == 1 && it->second->dim(0) == n;
}

using Problems = std::vector<std::string>;

// features.N.* and classifier.N.* tensors by module index (num_batches_tracked dropped); anything else a problem.
void group_tensors(const io::SafeTensors& file, std::map<int64_t, Params>& feat, std::map<int64_t, Params>& cls,
                   Problems& problems) {
    for (const auto& [name, t] : file.tensors) {
        std::string group, suffix;
        int64_t index = 0;
        if (!split_name(name, group, index, suffix) || (group != "features" && group != "classifier") ||
            suffix.find('.') != std::string::npos) {
            problems.push_back("unexpected tensor '" + name + "' " + t.shape().str() +
                               " (a VGG has only features.N.* and classifier.N.*)");
            continue;
        }
        if (suffix == "num_batches_tracked") continue;
        (group == "features" ? feat : cls)[index][suffix] = &t;
    }
}

// The convolution at features.i (3x3, bias, taking `ch` channels: 0 before the first) -> its output channels, or -1
// when it is no Conv2d.
int64_t read_conv(int64_t i, const Params& p, int64_t ch, VggConfig& c, Problems& problems) {
    auto w = p.find("weight");
    if (w == p.end() || w->second->rank() != 4 || p.size() != 2 || !p.count("bias")) {
        problems.push_back("features." + std::to_string(i) + " (" + shape_of(p) +
                           ") is not a Conv2d (weight [out, in, 3, 3] and bias [out])" +
                           (p.count("running_mean") ? ": a BatchNorm2d without a convolution before it" : ""));
        return -1;
    }
    const Shape& s = w->second->shape();
    const int64_t out = s[0], in = s[1];
    if (s[2] != 3 || s[3] != 3)
        problems.push_back("features." + std::to_string(i) + ".weight " + s.str() + " is not a 3x3 convolution");
    if (!is_vector(p, "bias", out))
        problems.push_back("features." + std::to_string(i) + ".bias " + p.at("bias")->shape().str() + " should be [" +
                           std::to_string(out) + "]");
    if (ch == 0) c.in_channels = in;
    else if (in != ch)
        problems.push_back("features." + std::to_string(i) + ".weight " + s.str() + " takes " + std::to_string(in) +
                           " channels, the layer before gives " + std::to_string(ch));
    return out;
}

// c.features, c.in_channels and c.batch_norm from torchvision's make_layers numbering: Conv2d [BatchNorm2d] ReLU
// per convolution, a MaxPool2d (no tensors) for every gap in the indices. Returns the last width (0: none).
int64_t infer_features(const std::map<int64_t, Params>& feat, VggConfig& c, Problems& problems) {
    int64_t ch = 0;   // width so far (0: before the first convolution)
    int64_t pos = 0;  // index make_layers gives the next module
    bool bn_known = false;
    if (feat.empty()) problems.push_back("no features.N tensors (convolutions)");
    for (auto it = feat.begin(); it != feat.end();) {
        const int64_t i = it->first;
        const Params& p = it->second;
        if (ch == 0 && i != 0)
            problems.push_back("the first convolution is features." + std::to_string(i) + ", not features.0");
        for (int64_t k = pos; k < i && ch > 0; ++k) c.features.push_back(0);  // the gap: MaxPool2d
        ++it;
        pos = i + 1;
        const int64_t out = read_conv(i, p, ch, c, problems);
        if (out < 0) continue;
        ch = out;
        c.features.push_back(out);
        const bool has_bn = it != feat.end() && it->first == i + 1 && it->second.count("running_mean");
        if (!bn_known) {
            c.batch_norm = has_bn;
            bn_known = true;
        } else if (has_bn != c.batch_norm) {
            problems.push_back("features." + std::to_string(i + 1) +
                               (has_bn ? " is a BatchNorm2d" : " is no BatchNorm2d") + " but the first convolution is " +
                               (c.batch_norm ? "" : "not ") + "followed by one");
        }
        if (has_bn) {
            const Params& q = it->second;
            if (q.size() != 4 || !is_vector(q, "weight", out) || !is_vector(q, "bias", out) ||
                !is_vector(q, "running_mean", out) || !is_vector(q, "running_var", out))
                problems.push_back("features." + std::to_string(i + 1) + " (" + shape_of(q) +
                                   ") should be a BatchNorm2d of " + std::to_string(out) +
                                   " channels: weight, bias, running_mean, running_var [" + std::to_string(out) + "]");
            ++it;
            pos = i + 2;
        }
        if (it != feat.end() && it->first == pos)
            problems.push_back("features." + std::to_string(pos) +
                               " has parameters where torchvision puts the ReLU after features." + std::to_string(i));
        pos += 1;  // the ReLU
    }
    c.features.push_back(0);  // every torchvision configuration ends with a max-pool
    return ch;
}

// c.num_classes and c.hidden from the Linear layers at classifier.0, .3, .6 ... Returns the first one's inputs
// (0: none readable).
int64_t infer_classifier(const std::map<int64_t, Params>& cls, VggConfig& c, Problems& problems) {
    int64_t k = 0, prev = 0;
    std::vector<int64_t> outs;
    int64_t first_in = 0;
    if (cls.empty()) problems.push_back("no classifier.N tensors (Linear layers)");
    for (const auto& [i, p] : cls) {
        auto w = p.find("weight");
        if (i != 3 * k)
            problems.push_back("classifier." + std::to_string(i) +
                               ": torchvision puts the Linear layers at classifier.0, .3, .6 "
                               "(Linear, ReLU, Dropout), expected classifier." + std::to_string(3 * k));
        ++k;
        if (w == p.end() || w->second->rank() != 2 || p.size() != 2 || !is_vector(p, "bias", w->second->dim(0))) {
            problems.push_back("classifier." + std::to_string(i) + " (" + shape_of(p) +
                               ") is not a Linear (weight [out, in] and bias [out])");
            continue;
        }
        const int64_t out = w->second->dim(0), in = w->second->dim(1);
        if (outs.empty()) first_in = in;
        else if (in != prev)
            problems.push_back("classifier." + std::to_string(i) + ".weight " + w->second->shape().str() + " takes " +
                               std::to_string(in) + " inputs, the layer before gives " + std::to_string(prev));
        outs.push_back(out);
        prev = out;
    }
    if (!outs.empty()) {
        c.num_classes = outs.back();
        c.hidden.assign(outs.begin(), outs.end() - 1);
    }
    if (c.num_classes < 2 && !outs.empty())
        problems.push_back("the last Linear has " + std::to_string(c.num_classes) + " output");
    return first_in;
}

// The layout (c.avgpool) and c.input_size from what the classifier takes after `ch` channels: 7x7 (torchvision's
// AdaptiveAvgPool2d) or a square map of side s (the small layout, input s * 2^pools).
void infer_layout(int64_t ch, int64_t first_in, const ModelOptions& options, VggConfig& c, Problems& problems) {
    if (ch <= 0 || first_in <= 0) return;
    const int64_t pools = c.pools();
    const auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(first_in / ch))));
    if (first_in == ch * 7 * 7) {
        c.avgpool = 7;
        c.input_size = options.input_size > 0 ? options.input_size : 224;
    } else if (first_in % ch == 0 && side * side * ch == first_in) {
        c.avgpool = 0;
        c.input_size = options.input_size > 0 ? options.input_size : side << pools;
    } else {
        problems.push_back("classifier.0 takes " + std::to_string(first_in) + " inputs; after features ending with " +
                           std::to_string(ch) + " channels it should take " + std::to_string(ch * 49) +
                           " (AdaptiveAvgPool2d((7, 7))) or " + std::to_string(ch) + "*s*s for a square map of side s");
    }
}

}  // namespace

// Every part is read and every problem collected before failing, so one error lists all that fits no VGG.
VggConfig infer_vgg_config(const io::SafeTensors& file, const ModelOptions& options) {
    Problems problems;
    std::map<int64_t, Params> feat, cls;
    group_tensors(file, feat, cls, problems);
    VggConfig c;
    c.name = "vgg-custom";
    const int64_t ch = infer_features(feat, c, problems);
    const int64_t first_in = infer_classifier(cls, c, problems);
    infer_layout(ch, first_in, options, c, problems);
    if (!problems.empty()) {
        std::string msg;
        for (const auto& p : problems) msg += "\n  " + p;
        GB_FAIL(file.source, ": does not fit any VGG (", problems.size(), " problem", problems.size() > 1 ? "s" : "",
                "):", msg);
    }
    // A registry name when the configuration is one of them.
    for (const std::string& name : model_names()) {
        const VggConfig r = model_config(name, {c.in_channels, c.input_size, c.num_classes});
        if (r.features == c.features && r.batch_norm == c.batch_norm && r.hidden == c.hidden && r.avgpool == c.avgpool) {
            c.name = r.name;
            break;
        }
    }
    return c;
}

}  // namespace gb::models
