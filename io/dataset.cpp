#include "io/dataset.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "io/file_util.h"
#include "io/idx.h"
#include "io/image.h"

namespace gb::io {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kFashionClasses = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                  "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
const std::vector<std::string> kCifar10Classes = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                  "dog",      "frog",       "horse", "ship", "truck"};

std::vector<std::string> numbered(int64_t n) {
    std::vector<std::string> out;
    for (int64_t i = 0; i < n; ++i) out.push_back(std::to_string(i));
    return out;
}

// The first existing file among `dir/stem` and `dir/stem.gz`.
std::string pick(const std::string& dir, const std::string& stem) {
    for (const std::string& p : {dir + "/" + stem, dir + "/" + stem + ".gz"})
        if (fs::exists(p)) return p;
    GB_FAIL("dataset file '", stem, "' (or ", stem, ".gz) not found in '", dir, "'");
}

}  // namespace

Dataset Dataset::head(int64_t n) const {
    if (n <= 0 || n >= size()) return *this;
    Dataset d = *this;
    d.images = images.narrow(0, n);
    d.labels = labels.narrow(0, n);
    return d;
}

Dataset Dataset::rows(int64_t first, int64_t count) const {
    GB_CHECK(first >= 0 && count >= 0 && first + count <= size(), name, ": samples [", first, ", ", first + count,
             ") of ", size());
    Dataset d = *this;
    d.images = images.narrow(first, count);
    d.labels = labels.narrow(first, count);
    return d;
}

const char* split_name(Split s) { return s == Split::Train ? "train" : "test"; }

Split split_named(const std::string& name) {
    GB_CHECK(name == "train" || name == "test", "unknown dataset split '", name, "' (train or test)");
    return name == "train" ? Split::Train : Split::Test;
}

Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 std::vector<std::string> class_names, const std::string& name) {
    const IdxArray img = read_idx(images_path);
    GB_CHECK(img.dims.size() == 3, "'", images_path, "': expected an IDX image file [N, rows, cols], got ",
             img.dims.size(), " dimensions");
    const IdxArray lab = read_idx(labels_path);
    GB_CHECK(lab.dims.size() == 1, "'", labels_path, "': expected an IDX label file [N], got ", lab.dims.size(),
             " dimensions");
    GB_CHECK(lab.dims[0] == img.dims[0], "'", labels_path, "' has ", lab.dims[0], " labels but '", images_path,
             "' has ", img.dims[0], " images");
    const int64_t n = img.dims[0], h = img.dims[1], w = img.dims[2];
    const int64_t classes = static_cast<int64_t>(class_names.size());
    Dataset d;
    d.name = name;
    d.class_names = std::move(class_names);
    d.images = Tensor(Shape{n, 1, h, w});
    d.labels = Tensor(Shape{n}, DType::Int32);
    float* px = d.images.data<float>();
    for (size_t i = 0; i < img.data.size(); ++i) px[i] = static_cast<float>(img.data[i]) * (1.f / 255.f);
    int32_t* py = d.labels.data<int32_t>();
    for (int64_t i = 0; i < n; ++i) {
        const int v = lab.data[static_cast<size_t>(i)];
        GB_CHECK(v < classes, "'", labels_path, "': label ", v, " of sample ", i, " is outside [0, ", classes, ")");
        py[i] = v;
    }
    return d;
}

Dataset parse_cifar(const std::vector<std::vector<uint8_t>>& batches, const std::vector<std::string>& sources,
                    int64_t classes, bool cifar100, bool fine, std::vector<std::string> class_names,
                    const std::string& name) {
    GB_CHECK(batches.size() == sources.size(), "parse_cifar: ", batches.size(), " batches but ", sources.size(),
             " names");
    GB_CHECK(!batches.empty(), "CIFAR: no batch files given");
    GB_CHECK(classes >= 1 && classes <= 256, "CIFAR: ", classes, " classes (a label is one byte: 1 to 256)");
    const int64_t label_bytes = cifar100 ? 2 : 1, pixels = 3 * 32 * 32, record = label_bytes + pixels;
    int64_t n = 0;
    for (size_t b = 0; b < batches.size(); ++b) {
        const uint64_t sz = batches[b].size();
        const uint64_t whole = sz / static_cast<uint64_t>(record) * static_cast<uint64_t>(record);
        GB_CHECK(sz > 0, "'", sources[b], "' is empty (a CIFAR batch holds ", record, "-byte records)");
        GB_CHECK(sz == whole, "'", sources[b], "' is ", sz, " bytes, not a whole number of ", record,
                 "-byte CIFAR records: record ", whole / static_cast<uint64_t>(record), " at byte ", whole,
                 " is truncated (", sz - whole, " of ", record, " bytes; or not a CIFAR", cifar100 ? "-100" : "-10",
                 " file)");
        n += static_cast<int64_t>(sz) / record;
    }
    Dataset d;
    d.name = name;
    d.class_names = class_names.empty() ? numbered(classes) : std::move(class_names);
    d.images = Tensor(Shape{n, 3, 32, 32});
    d.labels = Tensor(Shape{n}, DType::Int32);
    float* px = d.images.data<float>();
    int32_t* py = d.labels.data<int32_t>();
    int64_t at = 0;
    for (size_t b = 0; b < batches.size(); ++b) {
        const std::vector<uint8_t>& bytes = batches[b];
        for (size_t r = 0; r < bytes.size(); r += static_cast<size_t>(record), ++at) {
            const size_t label_at = r + (cifar100 && fine ? 1 : 0);
            const int v = bytes[label_at];
            GB_CHECK(v < classes, "'", sources[b], "': label ", v, " of record ", r / static_cast<size_t>(record),
                     " (byte ", label_at, ") is outside [0, ", classes, ")");
            py[at] = v;
            for (int64_t i = 0; i < pixels; ++i)
                px[at * pixels + i] = static_cast<float>(bytes[r + static_cast<size_t>(label_bytes + i)]) / 255.f;
        }
    }
    return d;
}

Dataset load_cifar(const std::vector<std::string>& batch_files, int64_t classes, bool cifar100, bool fine,
                   std::vector<std::string> class_names, const std::string& name) {
    // Each batch is read whole (to its end, so a pipe or FIFO works); the bytes are a quarter of
    // the float images they become.
    std::vector<std::vector<uint8_t>> batches;
    for (const auto& f : batch_files) batches.push_back(read_file(f));
    return parse_cifar(batches, batch_files, classes, cifar100, fine, std::move(class_names), name);
}

namespace {
Dataset read_image_folder(const std::string& root, int64_t channels) {
    GB_CHECK(fs::is_directory(root), "image folder '", root, "' does not exist or is not a folder");
    std::vector<std::string> classes;
    for (const auto& e : fs::directory_iterator(root))
        if (e.is_directory()) classes.push_back(e.path().filename().string());
    std::sort(classes.begin(), classes.end());
    GB_CHECK(!classes.empty(), "image folder '", root, "' has no class sub-folders");
    std::vector<std::pair<std::string, int32_t>> files;
    for (size_t c = 0; c < classes.size(); ++c) {
        std::vector<std::string> in_class;
        for (const auto& e : fs::directory_iterator(fs::path(root) / classes[c]))
            if (e.is_regular_file()) in_class.push_back(e.path().string());
        std::sort(in_class.begin(), in_class.end());
        for (auto& f : in_class) files.emplace_back(f, static_cast<int32_t>(c));
    }
    GB_CHECK(!files.empty(), "image folder '", root, "' has no images");
    const Tensor first = load_image(files[0].first, channels);
    const Shape one = first.shape();
    Dataset d;
    d.name = fs::path(root).filename().string();
    d.class_names = classes;
    const int64_t n = static_cast<int64_t>(files.size()), per = one.numel();
    d.images = Tensor(Shape{n, one[0], one[1], one[2]});
    d.labels = Tensor(Shape{n}, DType::Int32);
    for (int64_t i = 0; i < n; ++i) {
        const Tensor img = i == 0 ? first : load_image(files[static_cast<size_t>(i)].first, one[0]);
        GB_CHECK(img.shape() == one, "'", files[static_cast<size_t>(i)].first, "' is ", img.shape().str(),
                 " (C, H, W) but '", files[0].first, "' is ", one.str(), "; all images of a folder dataset must match");
        std::copy_n(img.data<float>(), per, d.images.data<float>() + i * per);
        d.labels.data<int32_t>()[i] = files[static_cast<size_t>(i)].second;
    }
    return d;
}
}  // namespace

Dataset load_image_folder(const std::string& root, int64_t channels) {
    try {
        return read_image_folder(root, channels);
    } catch (const fs::filesystem_error& e) {  // an unreadable sub-folder, a file removed meanwhile
        GB_FAIL("cannot read image folder '", root, "': ", e.code().message(), " (", e.path1().string(), ")");
    }
}

std::string find_dataset_dir(const std::string& name, const std::string& data_dir) {
    std::vector<std::string> tried;
    auto probe = [&](const std::string& dir) {
        tried.push_back(dir);
        return fs::is_directory(dir);
    };
    if (!data_dir.empty()) {  // an explicit folder is the only place looked at
        if (probe(data_dir + "/" + name)) return data_dir + "/" + name;
        if (probe(data_dir)) return data_dir;
    } else if (const char* env = std::getenv("GB_DATA_DIR"); env && *env) {
        if (probe(std::string(env) + "/" + name)) return std::string(env) + "/" + name;
    }
    if (data_dir.empty() && probe("/usr/share/datasets/" + name)) return "/usr/share/datasets/" + name;
    std::string list;
    for (auto& t : tried) list += (list.empty() ? "" : ", ") + t;
    GB_FAIL("dataset '", name, "' not found (looked in: ", list, "). ",
            name == "fashion-mnist" ? "Install Debian's dataset-fashion-mnist (scripts/setup.sh does) or "
                                    : "",
            "pass --data-dir or set GB_DATA_DIR");
}

std::vector<std::string> known_class_names(const std::string& name) {
    if (name == "fashion-mnist") return kFashionClasses;
    if (name == "mnist") return numbered(10);
    if (name == "cifar10") return kCifar10Classes;
    return {};
}

Dataset load_dataset(const std::string& name, Split split, const std::string& data_dir) {
    const bool train = split == Split::Train;
    if (name == "fashion-mnist" || name == "mnist") {
        const std::string dir = find_dataset_dir(name, data_dir);
        const std::string prefix = train ? "train" : "t10k";
        Dataset d = load_idx(pick(dir, prefix + "-images-idx3-ubyte"), pick(dir, prefix + "-labels-idx1-ubyte"),
                             name == "mnist" ? numbered(10) : kFashionClasses, name);
        return d;
    }
    if (name == "cifar10") {
        const std::string dir = find_dataset_dir(name, data_dir);
        std::vector<std::string> files;
        if (train)
            for (int i = 1; i <= 5; ++i) files.push_back(pick(dir, "data_batch_" + std::to_string(i) + ".bin"));
        else
            files.push_back(pick(dir, "test_batch.bin"));
        return load_cifar(files, 10, false, false, kCifar10Classes, name);
    }
    if (name == "cifar100") {
        const std::string dir = find_dataset_dir(name, data_dir);
        return load_cifar({pick(dir, train ? "train.bin" : "test.bin")}, 100, true, true, {}, name);
    }
    if (fs::is_directory(name)) {
        const fs::path sub = fs::path(name) / split_name(split);
        return load_image_folder(fs::is_directory(sub) ? sub.string() : name);
    }
    GB_FAIL("unknown dataset '", name, "': expected fashion-mnist, mnist, cifar10, cifar100 or a folder of class "
            "sub-folders");
}

}  // namespace gb::io
