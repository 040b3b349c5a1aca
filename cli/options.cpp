// Option validators and OutputDir (options.h). The validators run core/parse's strict parse_int / parse_number, the
// parsers behind metadata and method specs too, so a number typed anywhere is read by one set of rules; a
// validator's message is gb::Error's text, which CLI11 prefixes with the option's name. OutputDir writes a real
// probe file, so that permissions, a read-only file system or a full disk fail before any work, not after it.
#include "cli/options.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/parse.h"

namespace gb::cli {

namespace fs = std::filesystem;

namespace {
// CLI11 validators return "" for a good value, else the message (CLI11 puts the option's name in front).
std::string message_of(const std::function<void()>& check) {
    try {
        check();
        return {};
    } catch (const gb::Error& e) {
        std::string m = e.what();
        return m.rfind(": ", 0) == 0 ? m.substr(2) : m;  // parse_int/parse_number with an empty name
    }
}

std::string bounds(double lo, double hi, bool open_lo) {
    std::ostringstream s;
    s << (open_lo ? "(" : "[") << lo << ", " << hi << "]";
    return s.str();
}
}  // namespace

CLI::Validator integer(int64_t lo, int64_t hi) {
    const std::string desc = "INT in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    return CLI::Validator([lo, hi](std::string& s) { return message_of([&] { parse_int(s, lo, hi, ""); }); }, desc);
}

CLI::Validator number(double lo, double hi, bool open_lo) {
    const std::string range = bounds(lo, hi, open_lo);
    return CLI::Validator(
        [lo, hi, open_lo, range](std::string& s) {
            return message_of([&] {
                const double v = parse_number(s, -1e300, 1e300, "");
                GB_CHECK(v <= hi && (open_lo ? v > lo : v >= lo), s, " is out of range (expected a number in ", range, ")");
            });
        },
        "NUMBER in " + range);
}

OutputDir::OutputDir(const std::string& path, bool remove_on_failure, const std::string& option)
    : path_(path), remove_on_failure_(remove_on_failure) {
    GB_CHECK(!path.empty(), option, " is empty: give the folder to write into");
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (fs::exists(st)) {
        GB_CHECK(fs::is_directory(st), option, " '", path, "' exists and is not a folder");
    } else {
        fs::create_directories(path, ec);
        GB_CHECK(!ec, option, " '", path, "': cannot create the folder: ", ec.message());
        created_ = true;
    }
    // A probe file: permission, read-only file systems and a full disk show up here, before any work.
    const std::string probe = (fs::path(path) / (".glassbox-write-check." + std::to_string(::getpid()))).string();
    bool ok = false;
    std::string why;
    {
        std::ofstream f(probe, std::ios::binary);
        if (f) {
            f << "glassbox";
            f.flush();
            ok = static_cast<bool>(f);
        }
        if (!ok) why = std::strerror(errno);
    }
    fs::remove(probe, ec);
    if (!ok) {
        if (created_) fs::remove_all(path, ec);
        GB_FAIL(option, " '", path, "' is not writable: ", why);
    }
}

OutputDir::~OutputDir() {
    if (done_ || !created_) return;
    std::error_code ec;
    if (remove_on_failure_) fs::remove_all(path_, ec);
    else if (fs::is_empty(path_, ec)) fs::remove(path_, ec);
}

}  // namespace gb::cli
