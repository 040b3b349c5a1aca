// DataLoader: batches of a Dataset in a seeded order, normalised per channel
// ((x - mean) / std) and optionally augmented (random crop with zero padding,
// horizontal flip). The order and every augmentation draw are pure functions
// of (seed, epoch, sample), so runs and resumed runs see identical batches.
#pragma once

#include <cstdint>
#include <vector>

#include "../io/dataset.h"

namespace gb::train {

struct LoaderOptions {
    int64_t batch_size = 64;
    bool shuffle = true;
    uint64_t seed = 0;
    bool drop_last = false;
    std::vector<float> mean, stddev;  // per channel; empty = no normalisation
    int64_t crop_padding = 0;         // random crop of the original size from the zero-padded image
    bool hflip = false;               // flip left-right with probability 1/2
};

struct Batch {
    Tensor images;  // float32 [B, C, H, W]
    Tensor labels;  // int32 [B]
    std::vector<int64_t> indices;  // dataset indices of the samples
};

class DataLoader {
public:
    DataLoader(const io::Dataset& data, LoaderOptions options);
    void set_epoch(int64_t epoch);  // reshuffles (when shuffle) for that epoch
    int64_t size() const;           // batches per epoch
    Batch batch(int64_t index) const;
    // Rows [first, first + count) of batch `index` (a rank's shard under data-parallel training): the same
    // images, augmentation and labels as those rows of batch(index).
    Batch batch(int64_t index, int64_t first, int64_t count) const;
    const LoaderOptions& options() const { return opt_; }

private:
    const io::Dataset& data_;
    LoaderOptions opt_;
    int64_t epoch_ = 0;
    std::vector<int64_t> order_;
};

// Per-channel mean and standard deviation over a whole dataset (float64 sums).
void channel_stats(const io::Dataset& data, std::vector<float>& mean, std::vector<float>& stddev);

}  // namespace gb::train
