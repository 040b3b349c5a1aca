// Shared pieces of the sub-commands: option validators that say what range
// is accepted (finite, no integer wrap-around, no 309-digit limits); the
// option blocks that several commands take, each defined once here with one
// name per concept (an old spelling stays accepted as a deprecated alias that
// prints a one-line note on stderr); and the output folder, checked creatable
// and writable before any work starts and removed again when a command that
// created it fails.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "core/device.h"

namespace gb::cli {

// An integer in [lo, hi].
CLI::Validator integer(int64_t lo, int64_t hi);
// A finite number in [lo, hi]; with `open_lo` the bound lo itself is refused ((lo, hi]).
CLI::Validator number(double lo, double hi, bool open_lo = false);

// Usual bounds: counts of images, steps and samples, and batch sizes.
constexpr int64_t kMaxCount = 1'000'000'000;
constexpr int64_t kMaxBatch = 1 << 16;
constexpr int64_t kMaxThreads = 1024;

// Option blocks. Each adds its option(s) to `cmd`, writing into `target` (whose value
// is the default shown in --help when not empty), and returns the option where one is
// added, for ->required() and the like. A `help` argument replaces the usual text where
// a command uses the concept in its own way.
//
//   concept                         option(s)                 old spellings (deprecated)
//   a checkpoint to load            --checkpoint FILE
//   a model name                    --model NAME
//   a dataset                       --data NAME, --data-dir DIR
//   a dataset split                 --split train|test
//   where to compute                --device cpu|cuda[:N], --threads N
//   images per batch                --batch-size N            --batch
//   the first N images of a split   --limit N                 --samples
//   a seed                          --seed N
//   the output folder               --out DIR
CLI::Option* add_checkpoint_option(CLI::App& cmd, std::string& target, bool required,
                                   const std::string& help = "A model.safetensors written by glassbox train (or a "
                                                             "plain PyTorch state dict saved with safetensors)");
// Without `help`: the model of a state dict that has no glassbox metadata (train gives its own help).
CLI::Option* add_model_option(CLI::App& cmd, std::string& target, const std::string& help = "");
void add_data_options(CLI::App& cmd, std::string& data, std::string& data_dir,
                      const std::string& data_help = "Dataset: fashion-mnist, mnist, cifar10, cifar100, or a folder "
                                                     "of class folders");
CLI::Option* add_split_option(CLI::App& cmd, std::string& target);

// --device and --threads; apply() sets the thread count (0: all cores) and returns the device.
struct ComputeOptions {
    std::string device = "cpu";
    int threads = 0;
    Device apply() const;
};
// Without `with_device`, --threads only (a command that runs on the CPU).
void add_compute_options(CLI::App& cmd, ComputeOptions& target, bool with_device = true);

CLI::Option* add_batch_size_option(CLI::App& cmd, int64_t& target, const std::string& help = "Batch size");
// The first N images of the split; with min_images 0, 0 means all of them.
CLI::Option* add_limit_option(CLI::App& cmd, int64_t& target, const std::string& help, int64_t min_images = 0);
CLI::Option* add_seed_option(CLI::App& cmd, uint64_t& target, const std::string& help);
CLI::Option* add_out_option(CLI::App& cmd, std::string& target, const std::string& help = "Output folder");

class OutputDir {
public:
    // Creates `path` (and its parents) when missing and checks that a file can
    // be written in it; gb::Error naming `option` otherwise. With
    // `remove_on_failure`, a folder this call created is removed again unless
    // done() is called (a failed command leaves nothing behind); without it, the
    // folder is removed only if it is still empty (train keeps its checkpoints).
    explicit OutputDir(const std::string& path, bool remove_on_failure = true, const std::string& option = "--out");
    ~OutputDir();
    OutputDir(const OutputDir&) = delete;
    OutputDir& operator=(const OutputDir&) = delete;
    void done() { done_ = true; }

private:
    std::string path_;
    bool created_ = false, remove_on_failure_, done_ = false;
};

}  // namespace gb::cli
