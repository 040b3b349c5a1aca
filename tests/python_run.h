// Runs a script of tests/python with the Python that CMake was given (GB_PYTHON:
// torch, torchvision, safetensors and zennit 0.5.1; scripts/setup.sh creates
// <build>/pyenv). A missing Python or a failing script fails the test with the
// script's output; such tests are never skipped.
#pragma once

#include <array>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "testing.h"

#ifndef GB_PYTHON
#define GB_PYTHON ""
#endif
#ifndef GB_PYTHON_SCRIPTS
#define GB_PYTHON_SCRIPTS "tests/python"
#endif

namespace gb::testing {

// tests/python/<script> with `args` (each quoted); returns its output (stdout and stderr).
inline std::string run_python(const std::string& script, const std::vector<std::string>& args) {
    const std::string python = GB_PYTHON;
    REQUIRE_MESSAGE(!python.empty(), "no Python configured for the PyTorch comparison tests: configure with "
                                     "-DGB_PYTHON=<python with torch, torchvision, safetensors, zennit 0.5.1> "
                                     "(scripts/setup.sh creates <build>/pyenv and passes it)");
    std::string cmd = "\"" + python + "\" \"" + std::string(GB_PYTHON_SCRIPTS) + "/" + script + "\"";
    for (const auto& a : args) cmd += " \"" + a + "\"";
    cmd += " 2>&1";
    const auto t0 = std::chrono::steady_clock::now();
    std::string output;
    FILE* pipe = popen(cmd.c_str(), "r");
    REQUIRE_MESSAGE(pipe != nullptr, "cannot run " << cmd);
    std::array<char, 512> buf{};
    while (fgets(buf.data(), static_cast<int>(buf.size()), pipe)) output += buf.data();
    const int rc = pclose(pipe);
    REQUIRE_MESSAGE(rc == 0, "the Python script failed (" << cmd << "):\n" << output);
    MESSAGE(script << " (" << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
                   << " s):\n" << output);
    return output;
}

}  // namespace gb::testing
