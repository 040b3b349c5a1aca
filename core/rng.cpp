#include "core/rng.h"

#include "core/error.h"
#include "core/philox.h"

namespace gb {

uint32_t Generator::next_u32() {
    const uint64_t ctr = offset_++;
    return philox4x32(seed_, ctr >> 2).v[ctr & 3];
}

float Generator::uniform() { return philox_uniform(next_u32()); }

float Generator::uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }

float Generator::normal(float mean, float stddev) {
    // The shared Box-Muller draw (core/philox.h), so the add_normal_noise kernels reproduce this stream.
    const float z = philox_normal_at(seed_, offset_, 0, mean, stddev);
    offset_ += 2;
    return z;
}

uint64_t Generator::below(uint64_t n) {
    GB_CHECK(n > 0, "Generator::below(0): empty range");
    const uint64_t x = (static_cast<uint64_t>(next_u32()) << 32) | next_u32();
    return x % n;
}

Generator& default_generator() {
    static Generator g(0);
    return g;
}

void manual_seed(uint64_t seed) { default_generator().set_state(seed, 0); }

}  // namespace gb
