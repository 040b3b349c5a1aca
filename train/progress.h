// Progress display for long loops: on a terminal, one line redrawn in place
// (bar, counts, named values, items/s, ETA) at most 10 times a second; when
// not a terminal (logs, CI), a plain line every `log_every` fraction of the work.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace gb::train {

class Progress {
public:
    // total = number of steps; items_per_step scales the rate display (images per batch).
    Progress(std::string label, int64_t total, std::ostream& out, bool terminal, double log_every = 0.25);
    // After step `done` (1-based) with `items` processed so far and named values to show.
    void update(int64_t done, int64_t items, const std::vector<std::pair<std::string, std::string>>& values);
    // Closes the line (terminal) and returns the elapsed seconds.
    double finish();

    // Whether `out` is std::cerr/std::cout attached to a terminal.
    static bool is_terminal(const std::ostream& out);
    static std::string format_duration(double seconds);

private:
    std::string label_;
    int64_t total_;
    std::ostream& out_;
    bool terminal_;
    double log_every_;
    double next_log_;
    std::chrono::steady_clock::time_point start_, last_draw_;
    bool drawn_ = false;
};

}  // namespace gb::train
