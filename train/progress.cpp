#include "train/progress.h"

#include <unistd.h>

#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace gb::train {

Progress::Progress(std::string label, int64_t total, std::ostream& out, bool terminal, double log_every)
    : label_(std::move(label)), total_(total > 0 ? total : 1), out_(out), terminal_(terminal),
      log_every_(log_every), next_log_(log_every), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

bool Progress::is_terminal(const std::ostream& out) {
    if (&out == &std::cerr) return ::isatty(STDERR_FILENO);
    if (&out == &std::cout) return ::isatty(STDOUT_FILENO);
    return false;
}

std::string Progress::format_duration(double seconds) {
    const int64_t s = static_cast<int64_t>(seconds + 0.5);
    std::ostringstream o;
    if (s >= 3600) o << s / 3600 << ":" << std::setw(2) << std::setfill('0') << (s / 60) % 60;
    else o << s / 60;
    o << ":" << std::setw(2) << std::setfill('0') << s % 60;
    return o.str();
}

void Progress::update(int64_t done, int64_t items, const std::vector<std::pair<std::string, std::string>>& values) {
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double frac = static_cast<double>(done) / static_cast<double>(total_);
    const bool last = done >= total_;
    if (terminal_) {
        if (!last && std::chrono::duration<double>(now - last_draw_).count() < 0.1) return;
    } else {
        if (!last && frac < next_log_) return;
        while (next_log_ <= frac) next_log_ += log_every_;
    }
    last_draw_ = now;
    std::ostringstream line;
    line << label_ << " ";
    if (terminal_) {
        const int width = 24, fill = static_cast<int>(frac * width);
        line << "[" << std::string(static_cast<size_t>(fill), '#') << std::string(static_cast<size_t>(width - fill), '.')
             << "] ";
    }
    line << done << "/" << total_;
    for (const auto& [k, v] : values) line << "  " << k << " " << v;
    const double rate = elapsed > 0 ? static_cast<double>(items) / elapsed : 0.0;
    line << "  " << std::fixed << std::setprecision(0) << rate << " img/s";
    if (!last && frac > 0) line << "  ETA " << format_duration(elapsed * (1 - frac) / frac);
    else line << "  " << format_duration(elapsed);
    if (terminal_) {
        out_ << "\r\033[K" << line.str() << std::flush;
        drawn_ = true;
    } else {
        out_ << line.str() << "\n" << std::flush;
    }
}

double Progress::finish() {
    if (terminal_ && drawn_) out_ << "\n" << std::flush;
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

}  // namespace gb::train
