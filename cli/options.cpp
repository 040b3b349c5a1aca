// Option validators, the shared option blocks and OutputDir (options.h). The validators run core/parse's strict
// parse_int / parse_number, the parsers behind metadata and method specs too, so a number typed anywhere is read by
// one set of rules; a validator's message is gb::Error's text, which CLI11 prefixes with the option's name. An old
// spelling of an option is a second option (group "Deprecated", so that CLI11's errors still name it) with the same
// validator, writing the same target, that notes the new name on stderr when used; giving both is a usage error.
// OutputDir writes a real probe file, so that permissions, a read-only file system or a full disk fail before any
// work, not after it.
#include "cli/options.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "core/parallel.h"
#include "core/parse.h"
#include "models/registry.h"

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

namespace {

// `old_name` as a deprecated spelling of `current`: the same target and validator, and a note when used.
template <typename T>
void add_deprecated_alias(CLI::App& cmd, const std::string& old_name, CLI::Option* current, T& target,
                          const CLI::Validator& check) {
    const std::string new_name = current->get_name();
    cmd.add_option_function<T>(
           old_name,
           [&target, old_name, new_name](const T& value) {
               std::cerr << "glassbox: note: " << old_name << " is deprecated; use " << new_name << "\n";
               target = value;
           },
           "Old spelling of " + new_name)
        ->check(check)
        ->excludes(current)
        ->group("Deprecated");
}

// The current value as --help's default, unless there is none.
CLI::Option* show_default(CLI::Option* opt, const std::string& value) {
    return value.empty() ? opt : opt->capture_default_str();
}

}  // namespace

CLI::Option* add_checkpoint_option(CLI::App& cmd, std::string& target, bool required, const std::string& help) {
    CLI::Option* opt = cmd.add_option("--checkpoint", target, help)->check(CLI::ExistingFile);
    return opt->required(required);
}

CLI::Option* add_model_option(CLI::App& cmd, std::string& target, const std::string& help) {
    const std::string text = help.empty() ? "Model for a state dict without glassbox metadata (default: inferred "
                                            "from its tensors, e.g. a torchvision VGG): " + models::model_names_text()
                                          : help;
    return show_default(cmd.add_option("--model", target, text), target);
}

void add_data_options(CLI::App& cmd, std::string& data, std::string& data_dir, const std::string& data_help) {
    show_default(cmd.add_option("--data", data, data_help), data);
    cmd.add_option("--data-dir", data_dir, "Where to look for the dataset (default: $GB_DATA_DIR, /usr/share/datasets)");
}

CLI::Option* add_split_option(CLI::App& cmd, std::string& target) {
    return cmd.add_option("--split", target, "train or test")->capture_default_str()->check(CLI::IsMember({"train", "test"}));
}

Device ComputeOptions::apply() const {
    if (threads > 0) set_num_threads(threads);
    return Device::parse(device);
}

void add_compute_options(CLI::App& cmd, ComputeOptions& target, bool with_device) {
    if (with_device) cmd.add_option("--device", target.device, "cpu or cuda[:N]")->capture_default_str();
    cmd.add_option("--threads", target.threads,
                   "CPU threads (0: $GB_NUM_THREADS, else $OMP_NUM_THREADS, else every core this process may use)")
        ->check(integer(0, kMaxThreads));
}

CLI::Option* add_batch_size_option(CLI::App& cmd, int64_t& target, const std::string& help) {
    const CLI::Validator range = integer(1, kMaxBatch);
    CLI::Option* opt = cmd.add_option("--batch-size", target, help)->capture_default_str()->check(range);
    add_deprecated_alias(cmd, "--batch", opt, target, range);
    return opt;
}

CLI::Option* add_limit_option(CLI::App& cmd, int64_t& target, const std::string& help, int64_t min_images) {
    const CLI::Validator range = integer(min_images, kMaxCount);
    CLI::Option* opt = cmd.add_option("--limit", target, help)->capture_default_str()->check(range);
    add_deprecated_alias(cmd, "--samples", opt, target, range);
    return opt;
}

CLI::Option* add_seed_option(CLI::App& cmd, uint64_t& target, const std::string& help) {
    return cmd.add_option("--seed", target, help)->capture_default_str();
}

CLI::Option* add_out_option(CLI::App& cmd, std::string& target, const std::string& help) {
    return show_default(cmd.add_option("--out", target, help), target);
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
