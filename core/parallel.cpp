// glassbox's own thread pool (docs/architecture.md, core/).
//
// A call splits [begin, end) into contiguous pieces fixed by the range, grain and
// thread count (piece c is [begin + c * step, begin + (c + 1) * step), see
// parallel.h), so results do not depend on which thread runs which piece. The pieces are *claimed*, not
// assigned: the caller and every worker take the next unclaimed piece until
// none is left. A worker that the OS has descheduled (a neighbour is using the
// core) simply claims nothing, and the others, the caller included, do its
// share; with OpenMP's static schedule the whole call waited for it.
//
// The claim word packs (generation: 32 bits | chunks: 16 | next: 16). A claim is
// a compare-and-swap of next -> next + 1 within the caller's generation, so a
// worker still looking at the previous call can never take a piece of the next.
// Idle workers poll the claim word for kSpin (spinning, then yielding the core
// at each poll, so a neighbour that needs the core gets it), then sleep on it
// (std::atomic::wait, a futex); the caller waits for the last piece the same
// way. Calls made while a call is running (from a piece, or from another
// thread) run inline on their thread.
#include "core/parallel.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"

namespace gb {

namespace {

// How long a thread with nothing to do (a worker between calls, the caller waiting
// for the last pieces) polls before it sleeps, and for how much of that it spins
// before it yields its core at each poll instead.
constexpr auto kSpin = std::chrono::microseconds(2000);
constexpr auto kPause = std::chrono::microseconds(50);
constexpr int kMaxThreads = 1024;
constexpr int64_t kMaxChunks = 0xffff;
// Up to 4 chunks per thread: a thread slowed by a neighbour on its core then
// leaves its later chunks to the others (with one chunk each, a call waits for
// the slowest thread). Callers that want one share per thread (the GEMM, whose
// shares each pack an operand) say so with their grain.
constexpr int64_t kChunksPerThread = 4;

inline void cpu_pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

// Polls ready() until it answers true or kSpin has passed, and returns its last
// answer: a spin-loop hint between polls for the first kPause, then sched_yield,
// which hands the core to a neighbour waiting for it and returns at once when
// there is none. The clock is read every 32 polls (read at each, it was 5% of the
// profile of a run of short calls).
template <typename Ready>
bool poll(Ready&& ready) {
    const auto start = std::chrono::steady_clock::now();
    bool yielding = false;
    for (unsigned i = 1;; ++i) {
        if (ready()) return true;
        if (yielding)
            sched_yield();
        else
            cpu_pause();
        if (i % 32 == 0) {
            const auto waited = std::chrono::steady_clock::now() - start;
            if (waited >= kSpin) return ready();
            yielding = waited >= kPause;
        }
    }
}

constexpr uint64_t pack(uint64_t generation, uint64_t chunks, uint64_t next) {
    return generation << 32 | chunks << 16 | next;
}
constexpr uint32_t generation_of(uint64_t w) { return static_cast<uint32_t>(w >> 32); }
constexpr int64_t chunks_of(uint64_t w) { return static_cast<int64_t>((w >> 16) & 0xffff); }
constexpr int64_t next_of(uint64_t w) { return static_cast<int64_t>(w & 0xffff); }

thread_local bool t_inside = false;  // this thread is running a piece (or is a worker)

class Pool {
public:
    explicit Pool(int threads) {
        workers_.reserve(static_cast<size_t>(threads - 1));
        for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
    }
    ~Pool() {
        stop_.store(true);
        word_.fetch_add(uint64_t{1} << 32);  // a new generation with no pieces wakes everyone
        word_.notify_all();
        for (auto& w : workers_) w.join();
    }
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    // Runs the call's pieces with the workers; false when the pool is busy with
    // another thread's call (the caller then runs it inline).
    bool run(int64_t begin, int64_t end, int64_t step, int64_t chunks,
             const std::function<void(int64_t, int64_t)>& fn) {
        if (busy_.test_and_set(std::memory_order_acquire)) return false;
        fn_ = &fn;
        begin_ = begin;
        end_ = end;
        step_ = step;
        error_ = nullptr;
        done_.store(0, std::memory_order_relaxed);
        const uint32_t generation = generation_of(word_.load(std::memory_order_relaxed)) + 1;
        word_.store(pack(generation, static_cast<uint64_t>(chunks), 0));  // seq_cst: see work()
        if (sleepers_.load() > 0) word_.notify_all();

        t_inside = true;
        while (claim_and_run(generation)) {
        }
        t_inside = false;

        // Wait for pieces other threads are still running.
        int64_t done = 0;
        poll([&] { return (done = done_.load(std::memory_order_acquire)) >= chunks; });
        while (done < chunks) {
            caller_waiting_.store(true);
            done = done_.load();
            if (done < chunks) done_.wait(done);
            caller_waiting_.store(false);
            done = done_.load(std::memory_order_acquire);
        }
        std::exception_ptr error = error_;
        busy_.clear(std::memory_order_release);
        if (error) std::rethrow_exception(error);
        return true;
    }

    int threads() const { return static_cast<int>(workers_.size()) + 1; }

private:
    // Claims the next piece of `generation` and runs it; false when none is left.
    bool claim_and_run(uint32_t generation) {
        uint64_t w = word_.load(std::memory_order_acquire);
        for (;;) {
            if (generation_of(w) != generation || next_of(w) >= chunks_of(w)) return false;
            if (word_.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire)) break;
        }
        const int64_t c = next_of(w);
        const int64_t b = begin_ + c * step_;
        const int64_t e = std::min(end_, b + step_);
        if (b < e) {
            try {
                (*fn_)(b, e);
            } catch (...) {
                std::lock_guard lock(error_mutex_);
                if (!error_) error_ = std::current_exception();
            }
        }
        const int64_t finished = done_.fetch_add(1) + 1;  // seq_cst, as caller_waiting_: no lost wake-up
        if (finished == chunks_of(w) && caller_waiting_.load()) done_.notify_all();
        return true;
    }

    void work() {
        t_inside = true;
        uint32_t seen = generation_of(word_.load());
        while (!stop_.load(std::memory_order_relaxed)) {
            // Wait for a new generation: spin, then sleep on the word.
            uint64_t w = 0;
            poll([&] { return generation_of(w = word_.load(std::memory_order_acquire)) != seen; });
            while (generation_of(w) == seen) {
                // seq_cst increment, then the wait's load: either the caller sees a sleeper
                // and notifies, or this load sees the caller's new word (no lost wake-up).
                sleepers_.fetch_add(1);
                word_.wait(w);
                sleepers_.fetch_sub(1);
                w = word_.load(std::memory_order_acquire);
            }
            seen = generation_of(w);
            if (stop_.load()) break;
            while (claim_and_run(seen)) {
            }
        }
    }

    std::vector<std::thread> workers_;
    std::atomic<uint64_t> word_{0};
    std::atomic<int64_t> done_{0};
    std::atomic<int> sleepers_{0};
    std::atomic<bool> caller_waiting_{false};
    std::atomic<bool> stop_{false};
    std::atomic_flag busy_ = ATOMIC_FLAG_INIT;
    // The running call; written by the caller before it publishes the claim word.
    const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
    int64_t begin_ = 0, end_ = 0, step_ = 1;
    std::mutex error_mutex_;
    std::exception_ptr error_;
};

// The thread count a process starts with: GB_NUM_THREADS, else OMP_NUM_THREADS
// (what users of OpenMP programs already set), else the CPUs this process may run on.
int default_threads() {
    for (const char* name : {"GB_NUM_THREADS", "OMP_NUM_THREADS"}) {
        if (const char* v = std::getenv(name); v && *v) {
            char* rest = nullptr;
            const long n = std::strtol(v, &rest, 10);
            if (rest && *rest == '\0' && n >= 1) return static_cast<int>(std::min<long>(n, kMaxThreads));
        }
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
    return std::max(1u, std::thread::hardware_concurrency());
}

std::mutex g_pool_mutex;         // guards g_pool
// Made on first use with num_threads() threads; never destroyed (a call at exit, from
// another thread or a static destructor, still finds it; the OS ends its threads).
std::shared_ptr<Pool>& g_pool = *new std::shared_ptr<Pool>();
std::atomic<int> g_threads{0};   // 0: not yet decided

// After fork() only the forking thread exists in the child: forget the parent's
// pool without destroying it (that would join threads the child does not have)
// and its mutex (another thread may have held it), and start afresh.
void forget_pool_in_child() {
    new (&g_pool_mutex) std::mutex();
    new (&g_pool) std::shared_ptr<Pool>();
}

// The pool for the current thread count; a call keeps its pool alive, so
// set_num_threads while another thread's call runs retires the old pool after it.
std::shared_ptr<Pool> pool() {
    static const bool registered = (pthread_atfork(nullptr, nullptr, forget_pool_in_child), true);
    (void)registered;
    const int want = num_threads();
    std::lock_guard lock(g_pool_mutex);
    if (!g_pool || g_pool->threads() != want) g_pool = std::make_shared<Pool>(want);
    return g_pool;
}

}  // namespace

int num_threads() {
    int n = g_threads.load(std::memory_order_relaxed);
    if (n == 0) {
        int expected = 0;
        g_threads.compare_exchange_strong(expected, default_threads());
        n = g_threads.load(std::memory_order_relaxed);
    }
    return n;
}

void set_num_threads(int n) {
    GB_CHECK(n >= 1 && n <= kMaxThreads, "set_num_threads: need 1 to ", kMaxThreads, " threads, got ", n);
    g_threads.store(n);
}

int64_t parallel_chunks(int64_t n, int64_t grain) {
    if (n <= 0) return 0;
    grain = std::max<int64_t>(grain, 1);
    const int threads = num_threads();
    if (threads == 1) return 1;
    return std::min<int64_t>({kChunksPerThread * threads, (n + grain - 1) / grain, kMaxChunks});
}

void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    const int64_t n = end - begin;
    if (n <= 0) return;
    const int64_t chunks = parallel_chunks(n, grain);
    if (chunks <= 1 || t_inside) {
        fn(begin, end);
        return;
    }
    const int64_t step = (n + chunks - 1) / chunks;
    if (!pool()->run(begin, end, step, chunks, fn)) {
        // Another thread's call holds the pool: this one runs its pieces here, in order.
        t_inside = true;
        try {
            for (int64_t b = begin; b < end; b += step) fn(b, std::min(end, b + step));
        } catch (...) {
            t_inside = false;
            throw;
        }
        t_inside = false;
    }
}

}  // namespace gb
