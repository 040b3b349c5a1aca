#include "io/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    GB_CHECK(fd >= 0, "cannot open '", path, "': ", std::strerror(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    GB_CHECK(::fstat(fd, &st) == 0, "cannot read '", path, "': ", std::strerror(errno));
    GB_CHECK(!S_ISDIR(st.st_mode), "cannot read '", path, "': it is a folder, not a file");
    std::vector<uint8_t> data;
    // A regular file is read into a buffer of its size; a pipe or FIFO (or a file that reports size 0,
    // as /proc does) grows the buffer as it goes, up to max_bytes.
    const uint64_t expected = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
    GB_CHECK(expected <= max_bytes, "'", path, "' is ", expected, " bytes, more than the ", max_bytes,
             " this reader accepts");
    data.resize(static_cast<size_t>(expected));
    size_t got = 0;
    while (true) {
        if (got == data.size()) {
            if (expected > 0) {
                // The file may have grown since fstat; one more read tells (EOF is the normal case).
                uint8_t probe;
                const ssize_t r = ::read(fd, &probe, 1);
                if (r < 0 && errno == EINTR) continue;
                GB_CHECK(r >= 0, "reading '", path, "' failed: ", std::strerror(errno));
                GB_CHECK(r == 0, "'", path, "' grew while it was read (it had ", expected, " bytes)");
                break;
            }
            GB_CHECK(data.size() < max_bytes, "'", path, "' is more than the ", max_bytes,
                     " bytes this reader accepts");
            data.resize(static_cast<size_t>(std::min<uint64_t>(max_bytes, std::max<size_t>(data.size() * 2, 1 << 16))));
        }
        const ssize_t r = ::read(fd, data.data() + got, data.size() - got);
        if (r < 0 && errno == EINTR) continue;
        GB_CHECK(r >= 0, "reading '", path, "' failed after ", got, " bytes: ", std::strerror(errno));
        if (r == 0) {
            GB_CHECK(expected == 0 || got == expected, "short read from '", path, "': ", got, " of ", expected,
                     " bytes (the file shrank while it was read)");
            break;
        }
        got += static_cast<size_t>(r);
    }
    data.resize(got);
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
