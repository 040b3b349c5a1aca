// The CUDA emulator's launch machinery: a grid's blocks run one after another,
// a block's threads are std::threads, and barriers that remember their call site
// turn divergent __syncthreads or warp operations into a gb::Error instead of a hang.
#include "kernels/cuda/emulator/cuda_emulation.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gb::cuda_emu {

namespace {

struct Poisoned {};  // unwinds the other threads of a launch after one failed

// A call site; `file == nullptr` stands for the end of the kernel.
struct Site {
    const char* file = nullptr;
    unsigned line = 0;
    bool operator==(const Site& o) const {
        if (!file || !o.file) return file == o.file;
        return line == o.line && std::strcmp(file, o.file) == 0;
    }
    std::string str() const { return file ? std::string(file) + ":" + std::to_string(line) : "the end of the kernel"; }
};
Site site_of(SourceLocation at) { return Site{at.file_name(), at.line()}; }

constexpr auto kDeadlock = std::chrono::seconds(60);

// A reusable barrier for `count` threads. Every arrival names its call site; the
// first arrival of a phase fixes it and a different one fails the launch.
// Bookkeeping happens under a mutex; waiting is on the atomic generation
// (futex-based std::atomic::wait), so a completed phase wakes each waiter once
// without a stampede on the mutex.
class Barrier {
public:
    Barrier(int count, const char* scope) : count_(count), scope_(scope) {}

    // Arrives and waits for the phase to complete.
    void wait(const Site& site) {
        const uint64_t gen = arrive(site);
        generation_.wait(gen);
        if (poisoned_.load()) throw Poisoned{};
    }

    // Arrives without waiting (a thread leaving the kernel).
    void arrive_only(const Site& site) { arrive(site); }

    // Completed phases so far (the deadlock watchdog's measure of progress).
    uint64_t phases() const { return generation_.load(); }

    void poison() {
        std::lock_guard lock(mutex_);
        poisoned_.store(true);
        generation_.fetch_add(1);
        generation_.notify_all();
    }

private:
    // Returns the generation the arrival belongs to; completes the phase when last.
    uint64_t arrive(const Site& site) {
        std::lock_guard lock(mutex_);
        if (poisoned_.load()) throw Poisoned{};
        if (arrived_ == 0) {
            site_ = site;
        } else if (!(site_ == site)) {
            poisoned_.store(true);
            generation_.fetch_add(1);
            generation_.notify_all();
            GB_FAIL("CUDA emulator: threads of one ", scope_, " reached different barriers (", site_.str(), " and ",
                    site.str(), "); every thread of a ", scope_, " must reach the same __syncthreads / warp operation");
        }
        const uint64_t gen = generation_.load();
        if (++arrived_ == count_) {
            arrived_ = 0;
            generation_.fetch_add(1);
            generation_.notify_all();
        }
        return gen;
    }

    std::mutex mutex_;
    std::atomic<uint64_t> generation_{0};
    std::atomic<bool> poisoned_{false};
    int count_, arrived_ = 0;
    Site site_;
    const char* scope_;
};

struct Warp {
    explicit Warp(int lanes) : barrier(lanes, "warp") {}
    Barrier barrier;
    uint64_t slots[32] = {};
};

struct Launch {
    Launch(dim3 g, dim3 b, int threads, size_t shared_bytes)
        : grid(g), block(b), threads(threads), shared((shared_bytes + 15) / 16 + 1), block_barrier(threads, "block") {
        std::memset(shared.data(), 0xFF, shared.size() * sizeof(float4));
        for (int w = 0; w * 32 < threads; ++w) warps.push_back(std::make_unique<Warp>(std::min(32, threads - w * 32)));
    }
    // Grows while the launch makes progress: block phases, warp phases, finished threads (under done_mutex).
    uint64_t progress() const {
        uint64_t p = block_barrier.phases() + static_cast<uint64_t>(done);
        for (const auto& w : warps) p += w->barrier.phases();
        return p;
    }
    void fail(std::exception_ptr e) {
        {
            std::lock_guard lock(error_mutex);
            if (!error) error = e;
        }
        block_barrier.poison();
        for (auto& w : warps) w->barrier.poison();
    }

    dim3 grid, block;
    int threads;
    std::vector<float4> shared;  // dynamic shared memory, 16-byte aligned
    Barrier block_barrier;
    std::vector<std::unique_ptr<Warp>> warps;
    std::mutex error_mutex;
    std::exception_ptr error;
    std::mutex done_mutex;
    std::condition_variable done_cv;
    int done = 0;
};

std::mutex g_launch_mutex;
thread_local Launch* t_launch = nullptr;
thread_local int t_linear = 0;

Launch& current(const char* what) {
    GB_CHECK(t_launch, "CUDA emulator: ", what, " called outside a kernel");
    return *t_launch;
}

void check_warp_op(Launch& l, const Site& site, unsigned mask) {
    GB_CHECK(l.threads % 32 == 0, "CUDA emulator: warp operation at ", site.str(), " in a block of ", l.threads,
             " threads; warp shuffles and votes need a block size that is a multiple of 32");
    GB_CHECK(mask == 0xffffffffu, "CUDA emulator: warp operation at ", site.str(), " with mask 0x", std::hex, mask,
             "; only full-warp masks (0xffffffff) are supported");
}

void worker(Launch& l, int t, const std::function<void()>& body) {
    t_launch = &l;
    t_linear = t;
    threadIdx = uint3{t % l.block.x, (t / l.block.x) % l.block.y, t / (l.block.x * l.block.y)};
    blockDim = l.block;
    gridDim = l.grid;
    Warp& warp = *l.warps[static_cast<size_t>(t / 32)];
    try {
        for (unsigned z = 0; z < l.grid.z; ++z)
            for (unsigned y = 0; y < l.grid.y; ++y)
                for (unsigned x = 0; x < l.grid.x; ++x) {
                    blockIdx = uint3{x, y, z};
                    body();
                    warp.barrier.arrive_only(Site{});
                    l.block_barrier.wait(Site{});
                }
    } catch (const Poisoned&) {
    } catch (...) {
        l.fail(std::current_exception());
    }
    t_launch = nullptr;
    std::lock_guard lock(l.done_mutex);
    if (++l.done == l.threads) l.done_cv.notify_all();
}

// Worker threads kept from launch to launch (starting up to 1024 threads per
// launch dominated the run time): worker t runs thread t of each launch that has
// more than t threads. Never destroyed; idle workers end with the process.
class Pool {
public:
    void run(Launch& l, const std::function<void()>& body) {
        std::lock_guard lock(mutex_);
        while (static_cast<int>(size_) < l.threads) {
            std::thread([this, t = static_cast<int>(size_), start = generation_] { loop(t, start); }).detach();
            ++size_;
        }
        job_ = &l;
        job_threads_ = l.threads;
        body_ = &body;
        ++generation_;
        cv_.notify_all();
    }

private:
    void loop(int t, uint64_t seen) {
        for (;;) {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [&] { return generation_ != seen; });
            seen = generation_;
            if (t >= job_threads_) continue;  // not in this launch, whose Launch may be gone by now
            Launch* l = job_;
            const std::function<void()>* body = body_;
            lock.unlock();
            worker(*l, t, *body);
        }
    }

    std::mutex mutex_;
    std::condition_variable cv_;
    uint64_t generation_ = 0;
    size_t size_ = 0;
    Launch* job_ = nullptr;
    int job_threads_ = 0;
    const std::function<void()>* body_ = nullptr;
};

Pool& pool() {
    static auto* p = new Pool();
    return *p;
}

}  // namespace

void run_grid(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()>& body) {
    GB_CHECK(!t_launch, "CUDA emulator: a kernel launched a kernel (dynamic parallelism is not supported)");
    const uint64_t threads = uint64_t{block.x} * block.y * block.z;
    GB_CHECK(threads >= 1 && threads <= kMaxBlockThreads && block.z <= 64,
             "CUDA emulator: block (", block.x, ", ", block.y, ", ", block.z, ") has ", threads,
             " threads; a block has 1 to 1024 threads and z <= 64");
    GB_CHECK(grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.x <= 0x7fffffffu && grid.y <= 65535 &&
                 grid.z <= 65535,
             "CUDA emulator: grid (", grid.x, ", ", grid.y, ", ", grid.z,
             ") is out of range (x 1..2^31-1, y and z 1..65535)");
    GB_CHECK(shared_bytes <= kMaxDynamicShared, "CUDA emulator: ", shared_bytes,
             " bytes of dynamic shared memory requested; the limit is ", kMaxDynamicShared);
    std::lock_guard serial(g_launch_mutex);
    Launch l(grid, block, static_cast<int>(threads), shared_bytes);
    pool().run(l, body);
    {
        // Threads stuck at different barriers (e.g. some lanes at a shuffle, others at
        // __syncthreads) never finish: after kDeadlock without any barrier phase completing
        // or thread finishing, the launch is failed, which releases them. A launch that is
        // merely slow (a loaded machine) keeps making progress and is left to finish.
        std::unique_lock lock(l.done_mutex);
        uint64_t seen = l.progress();
        while (!l.done_cv.wait_for(lock, kDeadlock, [&] { return l.done == l.threads; })) {
            const uint64_t now = l.progress();
            if (now != seen) {
                seen = now;
                continue;
            }
            lock.unlock();
            try {
                GB_FAIL("CUDA emulator: the kernel made no progress for ", kDeadlock.count(),
                        " s; its threads wait at different barriers (deadlock)");
            } catch (...) {
                l.fail(std::current_exception());
            }
            lock.lock();
            l.done_cv.wait(lock, [&] { return l.done == l.threads; });
            break;
        }
    }
    if (l.error) std::rethrow_exception(l.error);
}

void syncthreads(SourceLocation at) { current("__syncthreads").block_barrier.wait(site_of(at)); }

void* dynamic_shared_bytes() { return current("dynamic shared memory").shared.data(); }

int lane_id() {
    current("a warp operation");
    return t_linear % 32;
}

uint64_t warp_exchange(SourceLocation at, unsigned mask, uint64_t value, int src_lane) {
    Launch& l = current("a warp shuffle");
    const Site site = site_of(at);
    check_warp_op(l, site, mask);
    Warp& w = *l.warps[static_cast<size_t>(t_linear / 32)];
    w.slots[t_linear % 32] = value;
    w.barrier.wait(site);
    const uint64_t got = w.slots[src_lane];
    w.barrier.wait(site);
    return got;
}

uint32_t warp_ballot(SourceLocation at, unsigned mask, bool predicate) {
    Launch& l = current("a warp vote");
    const Site site = site_of(at);
    check_warp_op(l, site, mask);
    Warp& w = *l.warps[static_cast<size_t>(t_linear / 32)];
    w.slots[t_linear % 32] = predicate ? 1 : 0;
    w.barrier.wait(site);
    uint32_t bits = 0;
    for (int i = 0; i < 32; ++i) bits |= static_cast<uint32_t>(w.slots[i] != 0) << i;
    w.barrier.wait(site);
    return bits;
}

namespace {
void check_width(int width) {
    GB_CHECK(width >= 1 && width <= 32 && (width & (width - 1)) == 0, "CUDA emulator: shuffle width ", width,
             " is not a power of two in 1..32");
}
}  // namespace

int shfl_source(int lane, int src, int width) {
    check_width(width);
    return (lane & ~(width - 1)) + (src & (width - 1));
}
int shfl_down_source(int lane, unsigned delta, int width) {
    check_width(width);
    const int in_segment = (lane & (width - 1)) + static_cast<int>(delta);
    return in_segment < width ? lane + static_cast<int>(delta) : lane;
}
int shfl_up_source(int lane, unsigned delta, int width) {
    check_width(width);
    const int in_segment = (lane & (width - 1)) - static_cast<int>(delta);
    return in_segment >= 0 ? lane - static_cast<int>(delta) : lane;
}
int shfl_xor_source(int lane, int lane_mask, int width) {
    check_width(width);
    const int src = lane ^ lane_mask;
    return src < 0 || src >= (lane & ~(width - 1)) + width ? lane : src;
}

}  // namespace gb::cuda_emu
