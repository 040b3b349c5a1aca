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

private:
    uint64_t seed_ = 0;
    uint64_t offset_ = 0;
};

// The process-wide default generator (seed 0 until manual_seed is called).
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace gb
