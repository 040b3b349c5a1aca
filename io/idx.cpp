#include "io/idx.h"

#include <zlib.h>

#include <cstdio>
#include <memory>

#include "core/error.h"
#include "io/file_util.h"

namespace gb::io {

namespace {
struct GzCloser {
    void operator()(gzFile_s* f) const { gzclose(f); }
};

void read_exact(gzFile f, void* dst, size_t n, const std::string& path, const char* what) {
    size_t got = 0;
    while (got < n) {
        const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - got, 1u << 30));
        const int r = gzread(f, static_cast<char*>(dst) + got, chunk);
        if (r < 0) {
            int errnum = 0;
            GB_FAIL("'", path, "': read error in the ", what, ": ", gzerror(f, &errnum));
        }
        if (r == 0) break;
        got += static_cast<size_t>(r);
    }
    GB_CHECK(got == n, "'", path, "' is truncated: the ", what, " needs ", n, " bytes, only ", got, " are there");
}
// Size of the content: the file size for a plain file, the gzip trailer's
// ISIZE (uncompressed size mod 2^32) for a gzip file.
uint64_t content_size(const std::string& path, bool& gzip) {
    const uint64_t n = file_size(path);
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    GB_CHECK(f != nullptr, "cannot open IDX file '", path, "'");
    uint8_t head[2] = {0, 0};
    gzip = n >= 18 && std::fread(head, 1, 2, f.get()) == 2 && head[0] == 0x1f && head[1] == 0x8b;
    if (!gzip) return n;
    uint8_t t[4];
    GB_CHECK(std::fseek(f.get(), -4, SEEK_END) == 0 && std::fread(t, 1, 4, f.get()) == 4, "'", path,
             "': cannot read the gzip trailer");
    return uint64_t(t[0]) | (uint64_t(t[1]) << 8) | (uint64_t(t[2]) << 16) | (uint64_t(t[3]) << 24);
}
}  // namespace

IdxArray read_idx(const std::string& path, int64_t max_elements) {
    bool gzip = false;
    const uint64_t content = content_size(path, gzip);
    std::unique_ptr<gzFile_s, GzCloser> f(gzopen(path.c_str(), "rb"));
    GB_CHECK(f != nullptr, "cannot open IDX file '", path, "'");
    uint8_t magic[4];
    read_exact(f.get(), magic, 4, path, "header");
    GB_CHECK(magic[0] == 0 && magic[1] == 0, "'", path, "' is not an IDX file (bad magic ", int(magic[0]), " ",
             int(magic[1]), ")");
    GB_CHECK(magic[2] == 0x08, "'", path, "': IDX data type 0x", std::hex, int(magic[2]),
             " is not supported (only unsigned bytes, 0x08)");
    const int ndims = magic[3];
    GB_CHECK(ndims >= 1 && ndims <= 4, "'", path, "': IDX with ", ndims, " dimensions (expected 1 to 4)");
    IdxArray out;
    int64_t total = 1;
    for (int i = 0; i < ndims; ++i) {
        uint8_t b[4];
        read_exact(f.get(), b, 4, path, "header");
        const int64_t d = (int64_t(b[0]) << 24) | (int64_t(b[1]) << 16) | (int64_t(b[2]) << 8) | int64_t(b[3]);
        GB_CHECK(d > 0, "'", path, "': dimension ", i, " is 0");
        total *= d;
        GB_CHECK(total <= max_elements, "'", path, "': header announces more than ", max_elements,
                 " elements (corrupt header?)");
        out.dims.push_back(d);
    }
    const uint64_t expected = 4 + 4 * static_cast<uint64_t>(ndims) + static_cast<uint64_t>(total);
    const uint64_t seen = gzip ? expected % (uint64_t(1) << 32) : expected;
    GB_CHECK(seen == content, "'", path, "': the header announces ", total, " elements (", expected,
             " bytes) but the ", gzip ? "decompressed " : "", "file holds ", content,
             " bytes (truncated or corrupt)");
    out.data.resize(static_cast<size_t>(total));
    read_exact(f.get(), out.data.data(), out.data.size(), path, "data");
    uint8_t extra;
    GB_CHECK(gzread(f.get(), &extra, 1) == 0, "'", path, "' has trailing bytes after the ", total,
             " elements its header announces");
    return out;
}

}  // namespace gb::io
