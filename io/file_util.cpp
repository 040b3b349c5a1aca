#include "io/file_util.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace gb::io {

uint64_t file_size(const std::string& path) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(path, ec);
    GB_CHECK(!ec, "cannot read '", path, "': ", ec.message());
    return n;
}

std::vector<uint8_t> read_file(const std::string& path, uint64_t max_bytes) {
    const uint64_t n = file_size(path);
    GB_CHECK(n <= max_bytes, "'", path, "' is ", n, " bytes, more than the ", max_bytes, " this reader accepts");
    std::ifstream in(path, std::ios::binary);
    GB_CHECK(in.good(), "cannot open '", path, "': ", std::strerror(errno));
    std::vector<uint8_t> data(n);
    in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(n));
    GB_CHECK(static_cast<uint64_t>(in.gcount()) == n, "short read from '", path, "'");
    return data;
}

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write) {
    namespace fs = std::filesystem;
    const fs::path target(path);
    if (target.has_parent_path() && !fs::exists(target.parent_path()))
        GB_FAIL("cannot write '", path, "': folder '", target.parent_path().string(), "' does not exist");
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        GB_CHECK(out.good(), "cannot create '", tmp, "': ", std::strerror(errno));
        try {
            write(out);
        } catch (...) {
            out.close();
            std::remove(tmp.c_str());
            throw;
        }
        out.flush();
        if (!out.good()) {
            out.close();
            std::remove(tmp.c_str());
            GB_FAIL("writing '", tmp, "' failed (disk full?)");
        }
    }
    std::error_code ec;
    fs::rename(tmp, target, ec);
    if (ec) {
        std::remove(tmp.c_str());
        GB_FAIL("cannot move '", tmp, "' to '", path, "': ", ec.message());
    }
}

}  // namespace gb::io
