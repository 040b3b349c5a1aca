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

namespace {
thread_local const BatchRows* g_rows = nullptr;
}  // namespace

BatchRows::BatchRows(int64_t first, int64_t count, int64_t total)
    : previous_(g_rows), first_(first), count_(count), total_(total) {
    GB_CHECK(first >= 0 && count >= 0 && first + count <= total, "BatchRows: rows [", first, ", ", first + count,
             ") are not inside a batch of ", total);
    g_rows = this;
}

BatchRows::~BatchRows() { g_rows = previous_; }

uint64_t Generator::reserve_rows(uint64_t n, int64_t rows) {
    const BatchRows* w = g_rows;
    if (!w) return reserve(n);
    GB_CHECK(rows == w->count_ && rows > 0 && n % static_cast<uint64_t>(rows) == 0, "random draws for ", rows,
             " rows (", n, " values) inside a window of ", w->count_, " rows of a batch of ", w->total_,
             ": a layer that draws per sample must see the window's rows");
    const uint64_t per = n / static_cast<uint64_t>(rows);
    const uint64_t o = offset_ + static_cast<uint64_t>(w->first_) * per;
    offset_ += static_cast<uint64_t>(w->total_) * per;
    return o;
}

Generator& default_generator() {
    static Generator g(0);
    return g;
}

void manual_seed(uint64_t seed) { default_generator().set_state(seed, 0); }

}  // namespace gb
