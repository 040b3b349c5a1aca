// core/parallel: glassbox's thread pool. Built twice: test_parallel (with the
// library) and, in builds with GB_TSAN_KERNELS, test_parallel_tsan (core/parallel.cpp
// alone under ThreadSanitizer, which reports any data race in the pool's protocol).
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"

using gb::parallel_for;

namespace {

// Restores the thread count a test changed.
struct Threads {
    explicit Threads(int n) : saved(gb::num_threads()) { gb::set_num_threads(n); }
    ~Threads() { gb::set_num_threads(saved); }
    int saved;
};

// The chunks one call ran, sorted.
std::vector<std::pair<int64_t, int64_t>> chunks_of_call(int64_t begin, int64_t end, int64_t grain) {
    std::mutex m;
    std::vector<std::pair<int64_t, int64_t>> seen;
    parallel_for(begin, end, grain, [&](int64_t b, int64_t e) {
        std::lock_guard lock(m);
        seen.emplace_back(b, e);
    });
    std::sort(seen.begin(), seen.end());
    return seen;
}

}  // namespace

TEST_CASE("parallel_for: chunks depend on the range, grain and thread count only") {
    for (int threads : {1, 2, 3, 4, 7}) {
        Threads t(threads);
        for (int64_t n : {1, 5, 64, 1000, 100003}) {
            for (int64_t grain : {1, 16, 1000}) {
                const int64_t chunks = threads == 1 ? 1 : std::min<int64_t>(4 * threads, (n + grain - 1) / grain);
                REQUIRE(gb::parallel_chunks(n, grain) == chunks);
                const int64_t step = (n + chunks - 1) / chunks;
                std::vector<std::pair<int64_t, int64_t>> want;
                for (int64_t b = 10; b < 10 + n; b += step) want.emplace_back(b, std::min(10 + n, b + step));
                for (int run = 0; run < 3; ++run) REQUIRE(chunks_of_call(10, 10 + n, grain) == want);
            }
        }
    }
}

TEST_CASE("parallel_for: many short calls in a row (the claim word across generations)") {
    Threads t(4);
    std::atomic<int64_t> total{0};
    for (int call = 0; call < 20000; ++call)
        parallel_for(0, 64, 1, [&](int64_t b, int64_t e) { total.fetch_add(e - b, std::memory_order_relaxed); });
    CHECK(total.load() == 20000 * 64);
}

TEST_CASE("parallel_for: an exception reaches the caller after every chunk ran; the pool still works") {
    Threads t(4);
    std::atomic<int> ran{0};
    CHECK_THROWS_WITH_AS(parallel_for(0, 400, 1,
                                      [&](int64_t b, int64_t) {
                                          ran++;
                                          if (b == 100) GB_FAIL("chunk at ", b, " failed");
                                      }),
                         "chunk at 100 failed", gb::Error);
    CHECK(ran.load() == gb::parallel_chunks(400, 1));  // 16
    CHECK_THROWS_AS(parallel_for(0, 400, 1, [](int64_t, int64_t) { throw std::runtime_error("every chunk"); }),
                    std::runtime_error);
    std::atomic<int64_t> sum{0};
    parallel_for(0, 1000, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) sum += i;
    });
    CHECK(sum.load() == 999 * 1000 / 2);
}

TEST_CASE("parallel_for: a call inside a chunk runs inline on that chunk's thread") {
    Threads t(4);
    std::atomic<int> inner_chunks{0}, other_thread{0};
    parallel_for(0, 4, 1, [&](int64_t, int64_t) {
        const auto outer = std::this_thread::get_id();
        parallel_for(0, 1000, 1, [&](int64_t b, int64_t e) {
            inner_chunks++;
            if (std::this_thread::get_id() != outer) other_thread++;
            CHECK((b == 0 && e == 1000));
        });
    });
    CHECK(inner_chunks.load() == 4);
    CHECK(other_thread.load() == 0);
}

TEST_CASE("parallel_for: calls from several threads at once each get every index once") {
    Threads t(3);
    constexpr int kCallers = 4;
    constexpr int64_t kN = 5000;
    std::vector<std::vector<int>> hits(kCallers, std::vector<int>(kN, 0));
    std::vector<std::thread> callers;
    for (int c = 0; c < kCallers; ++c)
        callers.emplace_back([&, c] {
            for (int round = 0; round < 50; ++round)
                parallel_for(0, kN, 7, [&](int64_t b, int64_t e) {
                    for (int64_t i = b; i < e; ++i) hits[c][static_cast<size_t>(i)]++;  // chunks are disjoint
                });
        });
    for (auto& th : callers) th.join();
    for (const auto& h : hits) CHECK(std::all_of(h.begin(), h.end(), [](int v) { return v == 50; }));
}

TEST_CASE("parallel_for: the thread count can change between calls; more threads than cores work") {
    for (int threads : {2, 1, 16, 3}) {
        Threads t(threads);
        std::set<int64_t> starts;
        std::mutex m;
        parallel_for(0, 1600, 1, [&](int64_t b, int64_t) {
            std::lock_guard lock(m);
            starts.insert(b);
        });
        CHECK(starts.size() == static_cast<size_t>(threads == 1 ? 1 : 4 * threads));
    }
    CHECK_THROWS_AS(gb::set_num_threads(0), gb::Error);
    CHECK_THROWS_AS(gb::set_num_threads(1025), gb::Error);
}

TEST_CASE("parallel_for: a forked child starts its own pool") {
    Threads t(3);
    parallel_for(0, 100, 1, [](int64_t, int64_t) {});  // the parent's pool exists
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::atomic<int64_t> sum{0};
        parallel_for(0, 3000, 1, [&](int64_t b, int64_t e) { sum += e - b; });
        _exit(sum.load() == 3000 ? 0 : 1);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}
