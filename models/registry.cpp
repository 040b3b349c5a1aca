#include "models/registry.h"

#include <algorithm>

#include "core/error.h"

namespace gb::models {

namespace {
constexpr int64_t M = 0;  // max-pool marker

struct Family {
    const char* name;  // without -bn / -small
    int depth;         // 0: vgg-mini
};
const Family kFamilies[] = {{"vgg-mini", 0}, {"vgg11", 11}, {"vgg13", 13}, {"vgg16", 16}, {"vgg19", 19}};

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() > tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
}  // namespace

const std::vector<int64_t>& vgg_features(int depth) {
    static const std::vector<int64_t> a = {64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M};
    static const std::vector<int64_t> b = {64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M};
    static const std::vector<int64_t> d = {64,  64,  M,   128, 128, M,   256, 256, 256,
                                           M,   512, 512, 512, M,   512, 512, 512, M};
    static const std::vector<int64_t> e = {64,  64,  M,   128, 128, M,   256, 256, 256, 256, M,
                                           512, 512, 512, 512, M,   512, 512, 512, 512, M};
    switch (depth) {
        case 11: return a;
        case 13: return b;
        case 16: return d;
        case 19: return e;
        default: GB_FAIL("no VGG of depth ", depth, " (11, 13, 16, 19)");
    }
}

std::vector<std::string> model_names() {
    std::vector<std::string> out = {"vgg-mini", "vgg-mini-bn"};
    for (const char* suffix : {"", "-bn"})
        for (int depth : {11, 13, 16, 19}) out.push_back("vgg" + std::to_string(depth) + suffix);
    for (const char* suffix : {"-small", "-bn-small"})
        for (int depth : {11, 13, 16, 19}) out.push_back("vgg" + std::to_string(depth) + suffix);
    return out;
}

std::string model_names_text() {
    std::string list;
    for (const auto& m : model_names()) list += (list.empty() ? "" : ", ") + m;
    return list;
}

VggConfig model_config(const std::string& name, const ModelOptions& options) {
    std::string n = name;
    std::replace(n.begin(), n.end(), '_', '-');  // torchvision spells vgg16_bn
    const bool small = ends_with(n, "-small");
    if (small) n.resize(n.size() - 6);
    const bool bn = ends_with(n, "-bn");
    if (bn) n.resize(n.size() - 3);
    for (const Family& f : kFamilies) {
        if (n != f.name || (small && f.depth == 0)) continue;
        const bool torchvision = f.depth != 0 && !small;
        VggConfig c;
        c.name = std::string(f.name) + (bn ? "-bn" : "") + (small ? "-small" : "");
        c.features = f.depth == 0 ? std::vector<int64_t>{32, 32, M, 64, 64, M} : vgg_features(f.depth);
        c.batch_norm = bn;
        c.hidden = f.depth == 0 ? std::vector<int64_t>{256}
                   : torchvision ? std::vector<int64_t>{4096, 4096}
                                 : std::vector<int64_t>{512, 512};
        c.avgpool = torchvision ? 7 : 0;
        c.in_channels = options.in_channels > 0 ? options.in_channels : torchvision ? 3 : 1;
        c.input_size = options.input_size > 0 ? options.input_size : torchvision ? 224 : 28;
        c.num_classes = options.num_classes > 0 ? options.num_classes : torchvision ? 1000 : 10;
        return c;
    }
    GB_FAIL("unknown model '", name, "' (known: ", model_names_text(), "; vgg16_bn spellings too)");
}

std::shared_ptr<Vgg> make_model(const std::string& name, const ModelOptions& options, Generator& gen) {
    return std::make_shared<Vgg>(model_config(name, options), gen);
}

}  // namespace gb::models
