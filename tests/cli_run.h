// Runs the built `glassbox` program (GB_CLI_PATH) with arguments and captures
// its exit code and output, for the command-line tests.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "testing.h"

namespace gb::testing {

struct Run {
    int code;
    std::string out;  // stdout and stderr together
};

// `glassbox args` (in folder `cwd` when given).
inline Run run(const std::string& args, const std::string& cwd = "") {
    const std::string cmd =
        (cwd.empty() ? "" : "cd \"" + cwd + "\" && ") + std::string(GB_CLI_PATH) + " " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    std::string out;
    std::array<char, 4096> buf;
    while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
    const int status = pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace gb::testing
