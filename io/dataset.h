// In-memory labelled image datasets: images float32 [N, C, H, W] scaled to
// [0, 1], labels int32 [N] in [0, classes). Readers for the IDX format
// (MNIST, Fashion-MNIST), CIFAR-10/100 binary batches, and a folder of images
// with one sub-folder per class. Every reader validates before allocating and
// raises gb::Error naming the file and the problem.
#pragma once

#include <string>
#include <vector>

#include "../core/tensor.h"

namespace gb::io {

struct Dataset {
    std::string name;
    Tensor images;  // float32 [N, C, H, W] in [0, 1]
    Tensor labels;  // int32 [N]
    std::vector<std::string> class_names;

    int64_t size() const { return images.defined() ? images.dim(0) : 0; }
    int64_t classes() const { return static_cast<int64_t>(class_names.size()); }
    int64_t channels() const { return images.dim(1); }
    int64_t height() const { return images.dim(2); }
    int64_t width() const { return images.dim(3); }
    // The first n samples (a view; all when n <= 0 or n >= size()).
    Dataset head(int64_t n) const;
    // Samples [first, first + count) (a view).
    Dataset rows(int64_t first, int64_t count) const;
};

enum class Split { Train, Test };
const char* split_name(Split s);
// "train" or "test" (as split_name writes them); gb::Error for anything else.
Split split_named(const std::string& name);

// images + labels IDX files (plain or .gz) -> dataset; counts, ranges and sizes checked.
Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 std::vector<std::string> class_names, const std::string& name);

// CIFAR binary batches: records of <label byte(s)> + 3072 bytes (3x32x32, planar).
// coarse_and_fine = true for CIFAR-100 (2 label bytes; `fine` picks which).
Dataset load_cifar(const std::vector<std::string>& batch_files, int64_t classes, bool cifar100, bool fine,
                   std::vector<std::string> class_names, const std::string& name);
// The same from the batches' bytes (`sources` names them in messages).
Dataset parse_cifar(const std::vector<std::vector<uint8_t>>& batches, const std::vector<std::string>& sources,
                    int64_t classes, bool cifar100, bool fine, std::vector<std::string> class_names,
                    const std::string& name);

// root/<class>/<image>: PNG, JPEG, BMP ... via stb_image; classes in sorted order.
// Every image must have the size and channel count of the first (or those given).
Dataset load_image_folder(const std::string& root, int64_t channels = 0);

// Named datasets: "fashion-mnist", "mnist", "cifar10", "cifar100", or a folder
// of class sub-folders. data_dir overrides where they are looked for (else
// $GB_DATA_DIR, then Debian's /usr/share/datasets/<name>).
Dataset load_dataset(const std::string& name, Split split, const std::string& data_dir = "");
// The class names of a named dataset known without reading it (fashion-mnist, mnist,
// cifar10); empty for others (cifar100, folders).
std::vector<std::string> known_class_names(const std::string& name);
// Where `name` would be read from; gb::Error listing the places tried.
std::string find_dataset_dir(const std::string& name, const std::string& data_dir = "");

}  // namespace gb::io
