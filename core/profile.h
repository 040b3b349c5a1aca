// Where a run's time goes: a profiler of the calling thread's work. Scopes are
// opened around layer calls (Layer::operator(), "forward"), graph nodes'
// backward passes (autograd::Engine, "backward"), the kernels' passes inside
// them (Conv2d and Linear: "backward-data", "backward-weight"), optimizer
// steps ("step") and the allocator's fresh blocks ("allocation"). Each records
// its self time (its time less that of the scopes opened inside it) under
// (owner, pass), with the floating-point operations its owner states
// (add_flops), so nothing is counted twice and the rows add up to the time
// spent inside the outermost scopes.
//
// Off by default: a closed profiler costs one relaxed atomic load per scope.
// Scopes record on the thread that opens them (layer calls and graph passes run
// on the caller's thread; parallel_for's workers open none); the table is
// shared by all threads under a mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace gb::profile {

void set_enabled(bool on);
bool enabled();
// Forgets every row and restarts the page-fault count.
void reset();

struct Row {
    const void* owner;  // a layer, an optimizer, or null (a graph node without a layer: its name is the pass)
    std::string pass;
    int64_t calls = 0;
    double seconds = 0;  // self time
    double flops = 0;
};
// In the order first recorded.
std::vector<Row> rows();
// Minor page faults of the process since reset() (first touches of fresh memory; their
// time is inside the scope that touched the page).
int64_t page_faults();

class Scope {
public:
    // `pass` names what runs ("forward", "backward-data", ...; a node's name when owner is null).
    // Closed profiler: nothing is copied or allocated.
    Scope(const void* owner, const char* pass);
    Scope(const void* owner, std::string pass);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

private:
    bool active_;
};

// Adds floating-point operations to the innermost open scope (when profiling).
void add_flops(double flops);

// A Markdown table of the rows, `steps` runs of the profiled work: per row the
// owner (`name_of(owner)`; "-" for none), the pass, calls and milliseconds per
// step, share of the total, GFLOP/s and percent of `peak_gflops` where the row
// has flops. Rows sorted by time, then a total.
std::string table(const std::function<std::string(const void*)>& name_of, int64_t steps, double peak_gflops);

}  // namespace gb::profile
