// Shared pieces of the sub-commands: option validators that say what range
// is accepted (finite, no integer wrap-around, no 309-digit limits), and the
// output folder, checked creatable and writable before any work starts and
// removed again when a command that created it fails.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace gb::cli {

// An integer in [lo, hi].
CLI::Validator integer(int64_t lo, int64_t hi);
// A finite number in [lo, hi]; with `open_lo` the bound lo itself is refused ((lo, hi]).
CLI::Validator number(double lo, double hi, bool open_lo = false);

// Usual bounds: counts of images, steps and samples, and batch sizes.
constexpr int64_t kMaxCount = 1'000'000'000;
constexpr int64_t kMaxBatch = 1 << 16;
constexpr int64_t kMaxThreads = 1024;

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
