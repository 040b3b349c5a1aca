#include "models/vgg.h"

#include <sstream>

#include "autograd/functions.h"
#include "core/parse.h"
#include "layers/layers.h"

namespace gb::models {

namespace {

std::string join_ints(const std::vector<int64_t>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) {
        if (i) s += ',';
        s += v[i] == 0 ? std::string("M") : std::to_string(v[i]);
    }
    return s;
}

std::vector<int64_t> parse_ints(const std::string& s, const std::string& key, const std::string& source) {
    std::vector<int64_t> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ',')) {
        if (item == "M") {
            out.push_back(0);
            continue;
        }
        out.push_back(parse_int(item, 1, kMaxWidth, source + ": metadata '" + key + "' (positive integers or M)"));
    }
    return out;
}

const std::string& need(const std::map<std::string, std::string>& meta, const std::string& key,
                        const std::string& source) {
    auto it = meta.find(key);
    GB_CHECK(it != meta.end(), source, ": metadata '", key, "' is missing (not a glassbox VGG checkpoint?)");
    return it->second;
}

int64_t need_int(const std::map<std::string, std::string>& meta, const std::string& key, const std::string& source,
                 int64_t lo, int64_t hi) {
    return parse_int(need(meta, key, source), lo, hi, source + ": metadata '" + key + "'");
}

}  // namespace

std::map<std::string, std::string> VggConfig::to_metadata() const {
    std::ostringstream d;
    d << dropout;
    return {{"model", name},
            {"vgg.features", join_ints(features)},
            {"vgg.batch_norm", batch_norm ? "1" : "0"},
            {"vgg.hidden", join_ints(hidden)},
            {"vgg.dropout", d.str()},
            {"in_channels", std::to_string(in_channels)},
            {"input_size", std::to_string(input_size)},
            {"num_classes", std::to_string(num_classes)},
            {"vgg.avgpool", std::to_string(avgpool)}};
}

int64_t VggConfig::pools() const {
    int64_t n = 0;
    for (int64_t w : features) n += w == 0;
    return n;
}

VggConfig VggConfig::from_metadata(const std::map<std::string, std::string>& meta, const std::string& source) {
    VggConfig c;
    c.name = need(meta, "model", source);
    c.features = parse_ints(need(meta, "vgg.features", source), "vgg.features", source);
    const std::string& bn = need(meta, "vgg.batch_norm", source);
    GB_CHECK(bn == "0" || bn == "1", source, ": metadata 'vgg.batch_norm' = '", bn, "' (expected 0 or 1)");
    c.batch_norm = bn == "1";
    c.hidden = parse_ints(need(meta, "vgg.hidden", source), "vgg.hidden", source);
    c.dropout = static_cast<float>(parse_number(need(meta, "vgg.dropout", source), 0.0, 0.999999,
                                                source + ": metadata 'vgg.dropout'"));
    c.in_channels = need_int(meta, "in_channels", source, 1, kMaxInChannels);
    c.input_size = need_int(meta, "input_size", source, 1, kMaxInputSize);
    c.num_classes = need_int(meta, "num_classes", source, 2, kMaxClasses);
    if (meta.count("vgg.avgpool")) {
        c.avgpool = need_int(meta, "vgg.avgpool", source, 0, kMaxInputSize);
    } else {
        // Written before the torchvision layouts existed: the small layout, whose
        // registry names vgg11 ... vgg19(-bn) have since become vgg11-small ....
        for (const char* old : {"vgg11", "vgg13", "vgg16", "vgg19"})
            if (c.name == old || c.name == std::string(old) + "-bn") c.name += "-small";
    }
    return c;
}

Vgg::Vgg(const VggConfig& config, Generator& gen) : config_(config) {
    using namespace gb::layers;
    GB_CHECK(config_.in_channels > 0 && config_.in_channels <= kMaxInChannels && config_.input_size > 0 &&
                 config_.input_size <= kMaxInputSize && config_.num_classes > 1 && config_.num_classes <= kMaxClasses,
             "VGG '", config_.name, "': bad input (", config_.in_channels, " channels, size ", config_.input_size, ", ",
             config_.num_classes, " classes; limits: 1..", kMaxInChannels, " channels, size 1..", kMaxInputSize, ", 2..",
             kMaxClasses, " classes)");
    for (int64_t w : config_.features)
        GB_CHECK(w >= 0 && w <= kMaxWidth, "VGG '", config_.name, "': convolution width ", w, " is outside 1..", kMaxWidth);
    for (int64_t w : config_.hidden)
        GB_CHECK(w > 0 && w <= kMaxWidth, "VGG '", config_.name, "': hidden width ", w, " is outside 1..", kMaxWidth);
    GB_CHECK(config_.avgpool >= 0, "VGG '", config_.name, "': avgpool must be >= 0");
    const bool torchvision = config_.avgpool > 0;
    for (int64_t p = 0; torchvision && p < config_.pools(); ++p) min_input_ *= 2;
    GB_CHECK(!torchvision || config_.input_size >= min_input_, "VGG '", config_.name, "': input size ",
             config_.input_size, " is below ", min_input_, " (", config_.pools(), " max-pools)");
    features_ = std::make_shared<Sequential>();
    int64_t ch = config_.in_channels, size = config_.input_size;
    for (int64_t width : config_.features) {
        if (width == 0) {
            // Small layout: a pool that would shrink the map below 1x1 is left out (deep configs).
            if (size < 2 && !torchvision) continue;
            features_->add(std::make_shared<MaxPool2d>(2));
            size /= 2;
            continue;
        }
        features_->add(std::make_shared<Conv2d>(ch, width, 3, Conv2dOptions{.padding = 1}, gen));
        if (config_.batch_norm) features_->add(std::make_shared<BatchNorm2d>(width));
        features_->add(std::make_shared<ReLU>());
        ch = width;
    }
    if (torchvision) {
        avgpool_ = std::make_shared<AdaptiveAvgPool2d>(config_.avgpool, config_.avgpool);
        size = config_.avgpool;
    }
    feature_size_ = size;
    feature_channels_ = ch;
    classifier_ = std::make_shared<Sequential>();
    int64_t in = ch * size * size;
    for (int64_t width : config_.hidden) {
        classifier_->add(std::make_shared<Linear>(in, width, true, gen));
        classifier_->add(std::make_shared<ReLU>());
        classifier_->add(std::make_shared<Dropout>(config_.dropout));
        in = width;
    }
    classifier_->add(std::make_shared<Linear>(in, config_.num_classes, true, gen));
    add_child("features", features_);
    if (avgpool_) add_child("avgpool", avgpool_);
    add_child("classifier", classifier_);
    // torchvision's VGG initialisation: convolutions Kaiming-normal (fan_out, ReLU gain),
    // linear layers N(0, 0.01), biases 0 (BatchNorm keeps weight 1, bias 0).
    for (auto& [path, layer] : named_layers()) {
        if (auto* conv = dynamic_cast<Conv2d*>(layer)) {
            Tensor w = conv->weight();
            init::kaiming_normal(w, 0.f, init::FanMode::Out, gen);
            if (Tensor b = conv->bias(); b.defined()) init::constant(b, 0.f);
        } else if (auto* lin = dynamic_cast<Linear*>(layer)) {
            Tensor w = lin->weight();
            init::normal(w, 0.f, 0.01f, gen);
            if (Tensor b = lin->bias(); b.defined()) init::constant(b, 0.f);
        }
    }
}

std::string Vgg::describe() const {
    return "VGG(" + config_.name + ", input " + std::to_string(config_.in_channels) + "x" +
           std::to_string(config_.input_size) + "x" + std::to_string(config_.input_size) + ", " +
           std::to_string(config_.num_classes) + " classes)";
}

Tensor Vgg::forward(const Tensor& x) {
    if (avgpool_) {
        GB_CHECK(x.rank() == 4 && x.dim(1) == config_.in_channels && x.dim(2) >= min_input_ && x.dim(3) >= min_input_,
                 describe(), ": expected input [N, ", config_.in_channels, ", H, W] with H, W >= ", min_input_,
                 ", got ", x.shape().str());
        return (*classifier_)(flatten((*avgpool_)((*features_)(x)), 1));
    }
    GB_CHECK(x.rank() == 4 && x.dim(1) == config_.in_channels && x.dim(2) == config_.input_size &&
                 x.dim(3) == config_.input_size,
             describe(), ": expected input [N, ", config_.in_channels, ", ", config_.input_size, ", ",
             config_.input_size, "], got ", x.shape().str());
    return (*classifier_)(flatten((*features_)(x), 1));
}

}  // namespace gb::models
