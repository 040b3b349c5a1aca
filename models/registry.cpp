#include "models/registry.h"

#include "core/error.h"

namespace gb::models {

namespace {
constexpr int64_t M = 0;  // max-pool marker

struct Entry {
    const char* name;
    std::vector<int64_t> features;
};

const std::vector<Entry>& entries() {
    static const std::vector<Entry> e = {
        {"vgg-mini", {32, 32, M, 64, 64, M}},
        {"vgg11", {64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M}},
        {"vgg13", {64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M}},
        {"vgg16", {64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M}},
        {"vgg19", {64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M}},
    };
    return e;
}
}  // namespace

std::vector<std::string> model_names() {
    std::vector<std::string> out;
    for (const auto& e : entries()) {
        out.push_back(e.name);
        out.push_back(std::string(e.name) + "-bn");
    }
    return out;
}

VggConfig model_config(const std::string& name, const ModelOptions& options) {
    const bool bn = name.size() > 3 && name.compare(name.size() - 3, 3, "-bn") == 0;
    const std::string base = bn ? name.substr(0, name.size() - 3) : name;
    for (const auto& e : entries()) {
        if (base != e.name) continue;
        VggConfig c;
        c.name = name;
        c.features = e.features;
        c.batch_norm = bn;
        c.hidden = base == "vgg-mini" ? std::vector<int64_t>{256} : std::vector<int64_t>{512, 512};
        c.in_channels = options.in_channels;
        c.input_size = options.input_size;
        c.num_classes = options.num_classes;
        return c;
    }
    std::string list;
    for (const auto& n : model_names()) list += (list.empty() ? "" : ", ") + n;
    GB_FAIL("unknown model '", name, "' (known: ", list, ")");
}

std::shared_ptr<Vgg> make_model(const std::string& name, const ModelOptions& options, Generator& gen) {
    return std::make_shared<Vgg>(model_config(name, options), gen);
}

}  // namespace gb::models
