// Generator: a seeded, reproducible random stream (Philox4x32-10 underneath).
// Same seed -> same numbers on every machine. `reserve(n)` hands out a block
// of n counter values so a kernel can draw them in parallel (dropout).
#pragma once

#include <cstdint>

namespace gb {

class Generator {
public:
    explicit Generator(uint64_t seed = 0) : seed_(seed) {}
    uint64_t seed() const { return seed_; }
    uint64_t offset() const { return offset_; }
    void set_state(uint64_t seed, uint64_t offset) { seed_ = seed; offset_ = offset; }

    uint32_t next_u32();
    float uniform();                       // [0, 1)
    float uniform(float lo, float hi);     // [lo, hi)
    float normal(float mean = 0.f, float stddev = 1.f);  // Box-Muller
    // Uniform integer in [0, n).
    uint64_t below(uint64_t n);
    // Reserves n draws; returns the offset of the first one (see philox_uniform_at).
    uint64_t reserve(uint64_t n) { const uint64_t o = offset_; offset_ += n; return o; }
    // Reserves n draws for a tensor whose dim 0 is a batch of `rows` rows: reserve(n), except inside a
    // BatchRows window, where the rows are a shard of a larger batch: the block the whole batch would take is
    // reserved and the offset of the shard's first row's share is returned, so every row gets the draws it
    // gets when one process runs the whole batch (dropout under data-parallel training).
    uint64_t reserve_rows(uint64_t n, int64_t rows);

private:
    uint64_t seed_ = 0;
    uint64_t offset_ = 0;
};

// While alive (on this thread): the batches the model sees are rows [first, first + count) of batches of
// `total` rows (Generator::reserve_rows).
class BatchRows {
public:
    BatchRows(int64_t first, int64_t count, int64_t total);
    ~BatchRows();
    BatchRows(const BatchRows&) = delete;
    BatchRows& operator=(const BatchRows&) = delete;

private:
    const BatchRows* previous_;
    int64_t first_, count_, total_;
    friend class Generator;
};

// The process-wide default generator (seed 0 until manual_seed is called).
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace gb
