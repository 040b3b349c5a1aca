#include "io/file_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <streambuf>

#include "core/error.h"

namespace gb::io {

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

namespace {

// An output stream buffer over a POSIX file descriptor that keeps the errno of
// the first failed write (std::ofstream only reports "bad", which hides ENOSPC).
class FdBuf : public std::streambuf {
public:
    explicit FdBuf(int fd) : fd_(fd), buf_(1 << 16) { setp(buf_.data(), buf_.data() + buf_.size()); }
    int error() const { return error_; }

protected:
    int_type overflow(int_type c) override {
        if (!drain()) return traits_type::eof();
        if (!traits_type::eq_int_type(c, traits_type::eof())) {
            *pptr() = traits_type::to_char_type(c);
            pbump(1);
        }
        return traits_type::not_eof(c);
    }
    int sync() override { return drain() ? 0 : -1; }

private:
    bool drain() {
        if (error_) return false;
        const char* p = pbase();
        while (p < pptr()) {
            const ssize_t n = ::write(fd_, p, static_cast<size_t>(pptr() - p));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                error_ = n < 0 ? errno : EIO;
                return false;
            }
            p += n;
        }
        setp(buf_.data(), buf_.data() + buf_.size());
        return true;
    }
    int fd_;
    int error_ = 0;
    std::vector<char> buf_;
};

// fsync that retries on EINTR; 0 or the errno.
int fsync_fd(int fd) {
    while (::fsync(fd) != 0)
        if (errno != EINTR) return errno;
    return 0;
}

}  // namespace

int remove_stale_temporaries(const std::string& path) {
    namespace fs = std::filesystem;
    const fs::path target(path);
    const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    const std::string prefix = target.filename().string() + ".tmp.";
    int removed = 0;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string digits = name.substr(prefix.size());
        if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
        const long pid = std::stol(digits);
        if (pid <= 0 || pid == ::getpid()) continue;
        // Only a process that is certainly gone: EPERM means it exists under another user.
        if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
        std::error_code rm;
        if (fs::remove(it->path(), rm)) ++removed;
    }
    return removed;
}

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write) {
    namespace fs = std::filesystem;
    const fs::path target(path);
    const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    if (target.has_parent_path() && !fs::exists(target.parent_path()))
        GB_FAIL("cannot write '", path, "': folder '", target.parent_path().string(), "' does not exist");
    remove_stale_temporaries(path);
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    GB_CHECK(fd >= 0, "cannot create '", tmp, "': ", std::strerror(errno));
    // Any failure from here on: close, remove the temporary, report.
    auto fail = [&](const std::string& what, int err) {
        ::close(fd);
        ::unlink(tmp.c_str());
        GB_FAIL(what, " '", tmp, "' (for '", path, "') failed: ", std::strerror(err));
    };
    {
        FdBuf buf(fd);
        std::ostream out(&buf);
        try {
            write(out);
        } catch (...) {
            ::close(fd);
            ::unlink(tmp.c_str());
            throw;
        }
        out.flush();
        if (buf.error()) fail("writing", buf.error());
        if (!out.good()) fail("writing", EIO);
    }
    // The data must be on disk before the rename makes it the file under `path`;
    // otherwise a crash can leave a renamed but empty or partial file.
    if (const int err = fsync_fd(fd)) fail("fsync of", err);
    if (::close(fd) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        GB_FAIL("closing '", tmp, "' (for '", path, "') failed: ", std::strerror(err));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        GB_FAIL("cannot move '", tmp, "' to '", path, "': ", std::strerror(err));
    }
    // The rename is durable only once the folder's entry is: fsync the folder.
    // Some file systems cannot sync a folder (EINVAL); the rename is done either way.
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    GB_CHECK(dfd >= 0, "wrote '", path, "' but cannot open its folder '", dir.string(), "' to sync it: ",
             std::strerror(errno));
    const int err = fsync_fd(dfd);
    ::close(dfd);
    GB_CHECK(err == 0 || err == EINVAL || err == ENOTSUP, "wrote '", path, "' but syncing its folder '", dir.string(),
             "' failed: ", std::strerror(err));
}

std::string csv_field(const std::string& text) {
    if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
    std::string out = "\"";
    for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

}  // namespace gb::io
