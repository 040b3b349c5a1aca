#include "core/profile.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <utility>

namespace gb::profile {

namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_enabled{false};

struct Table {
    std::mutex mutex;
    std::vector<Row> rows;
    std::map<std::pair<const void*, std::string>, size_t> index;
    int64_t faults_at_reset = 0;
};

// Never destroyed: scopes may close during static destruction.
Table& table_store() {
    static Table* t = new Table;
    return *t;
}

struct Frame {
    const void* owner;
    std::string pass;
    Clock::time_point start;
    double child_seconds;
    double flops;
};

thread_local std::vector<Frame> t_stack;

int64_t minor_faults() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

}  // namespace

void set_enabled(bool on) { g_enabled.store(on, std::memory_order_relaxed); }
bool enabled() { return g_enabled.load(std::memory_order_relaxed); }

void reset() {
    Table& t = table_store();
    std::lock_guard<std::mutex> lock(t.mutex);
    t.rows.clear();
    t.index.clear();
    t.faults_at_reset = minor_faults();
}

std::vector<Row> rows() {
    Table& t = table_store();
    std::lock_guard<std::mutex> lock(t.mutex);
    return t.rows;
}

int64_t page_faults() {
    Table& t = table_store();
    std::lock_guard<std::mutex> lock(t.mutex);
    return minor_faults() - t.faults_at_reset;
}

Scope::Scope(const void* owner, const char* pass) : active_(enabled()) {
    if (active_) t_stack.push_back(Frame{owner, pass, Clock::now(), 0.0, 0.0});
}

Scope::Scope(const void* owner, std::string pass) : active_(enabled()) {
    if (active_) t_stack.push_back(Frame{owner, std::move(pass), Clock::now(), 0.0, 0.0});
}

Scope::~Scope() {
    if (!active_ || t_stack.empty()) return;
    const Frame f = std::move(t_stack.back());
    t_stack.pop_back();
    const double elapsed = std::chrono::duration<double>(Clock::now() - f.start).count();
    if (!t_stack.empty()) t_stack.back().child_seconds += elapsed;
    Table& t = table_store();
    std::lock_guard<std::mutex> lock(t.mutex);
    auto [it, fresh] = t.index.try_emplace({f.owner, f.pass}, t.rows.size());
    if (fresh) t.rows.push_back(Row{f.owner, f.pass});
    Row& r = t.rows[it->second];
    ++r.calls;
    r.seconds += std::max(0.0, elapsed - f.child_seconds);
    r.flops += f.flops;
}

void add_flops(double flops) {
    if (enabled() && !t_stack.empty()) t_stack.back().flops += flops;
}

std::string table(const std::function<std::string(const void*)>& name_of, int64_t steps, double peak_gflops) {
    std::vector<Row> rs = rows();
    std::stable_sort(rs.begin(), rs.end(), [](const Row& a, const Row& b) { return a.seconds > b.seconds; });
    double total = 0, total_flops = 0;
    for (const Row& r : rs) {
        total += r.seconds;
        total_flops += r.flops;
    }
    const double per = steps > 0 ? 1.0 / static_cast<double>(steps) : 1.0;
    std::string out =
        "| layer | pass | calls/step | ms/step | share | GFLOP/s | of peak |\n|---|---|---:|---:|---:|---:|---:|\n";
    char buf[512];
    // seconds and flops per step; `total_share` is the row's share of the total.
    auto line = [&](const std::string& owner, const std::string& pass, const std::string& calls, double seconds,
                    double flops, double total_share) {
        std::string rate, of_peak;
        if (flops > 0 && seconds > 0) {
            const double gf = flops / seconds * 1e-9;
            std::snprintf(buf, sizeof buf, "%.0f", gf);
            rate = buf;
            if (peak_gflops > 0) {
                std::snprintf(buf, sizeof buf, "%.0f%%", 100.0 * gf / peak_gflops);
                of_peak = buf;
            }
        }
        std::snprintf(buf, sizeof buf, "| %s | %s | %s | %.3f | %.1f%% | %s | %s |\n", owner.c_str(), pass.c_str(),
                      calls.c_str(), seconds * 1e3, 100.0 * total_share, rate.c_str(), of_peak.c_str());
        out += buf;
    };
    for (const Row& r : rs) {
        std::snprintf(buf, sizeof buf, "%.3g", static_cast<double>(r.calls) * per);
        line(r.owner ? name_of(r.owner) : "-", r.pass, buf, r.seconds * per, r.flops * per,
             total > 0 ? r.seconds / total : 0.0);
    }
    line("**total**", "", "", total * per, total_flops * per, 1.0);
    return out;
}

}  // namespace gb::profile
