// A fresh temporary folder for a test, removed when the object goes away.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace gb::testing {

class TempDir {
public:
    explicit TempDir(const std::string& tag) {
        static int counter = 0;
        path_ = std::filesystem::temp_directory_path() /
                ("glassbox-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    std::string path(const std::string& name = "") const { return name.empty() ? path_.string() : (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// The whole file as text ("" when it cannot be read).
inline std::string read_text(const std::string& path) {
    std::ifstream f(path);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Path of a file shipped under tests/data (GB_TEST_DATA is set by ctest).
inline std::string data_file(const std::string& name) {
    const char* dir = std::getenv("GB_TEST_DATA");
    return std::string(dir ? dir : "tests/data") + "/" + name;
}

}  // namespace gb::testing
