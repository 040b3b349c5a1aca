#include "io/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "io/file_util.h"

namespace gb::io {

namespace {

// The content of an IDX file as a stream: the bytes themselves, or the decompression of a gzip
// file (RFC 1952). A gzip file is one or more members back to back (`cat a.gz b.gz` is legal and
// decompresses to the concatenation), so the content size is only known by decompressing: the
// last member's ISIZE trailer counts that member alone. Reading asks for exactly what the header
// announces, so a gzip bomb never inflates more than that (plus one byte to see trailing data).
class Content {
public:
    Content(const std::vector<uint8_t>& bytes, const std::string& src) : in_(bytes), src_(src) {
        gzip_ = in_.size() >= 2 && in_[0] == 0x1f && in_[1] == 0x8b;
        if (gzip_) {
            z_.next_in = const_cast<Bytef*>(in_.data());  // zlib's API is not const-correct
            z_.avail_in = 0;
            // 15 + 16: a gzip wrapper only (a zlib or raw stream behind the magic is not gzip).
            GB_CHECK(inflateInit2(&z_, 15 + 16) == Z_OK, src_, ": zlib initialisation failed");
            open_ = true;
        }
    }
    ~Content() {
        if (open_) inflateEnd(&z_);
    }
    Content(const Content&) = delete;
    Content& operator=(const Content&) = delete;

    bool gzip() const { return gzip_; }
    uint64_t produced() const { return produced_; }

    // Up to n bytes of content into dst; fewer only at the end of the content.
    size_t read(uint8_t* dst, size_t n) {
        if (!gzip_) {
            const size_t k = std::min(n, in_.size() - pos_);
            if (k) std::memcpy(dst, in_.data() + pos_, k);
            pos_ += k;
            produced_ += k;
            return k;
        }
        size_t got = 0;
        while (got < n && !done_) {
            const size_t in_pos = in_.size() - remaining_in();
            z_.next_in = const_cast<Bytef*>(in_.data() + in_pos);
            z_.avail_in = static_cast<uInt>(std::min<size_t>(in_.size() - in_pos, 1u << 30));
            z_.next_out = dst + got;
            z_.avail_out = static_cast<uInt>(std::min<size_t>(n - got, 1u << 30));
            const uInt before_out = z_.avail_out;
            const uInt before_in = z_.avail_in;
            const int r = inflate(&z_, Z_NO_FLUSH);
            got += before_out - z_.avail_out;
            consumed_ += before_in - z_.avail_in;
            if (r == Z_STREAM_END) {
                ++members_;
                // Another member may follow; anything else after a member is trailing garbage.
                if (consumed_ == in_.size()) {
                    done_ = true;
                } else {
                    GB_CHECK(in_.size() - consumed_ >= 2 && in_[consumed_] == 0x1f && in_[consumed_ + 1] == 0x8b,
                             src_, ": ", in_.size() - consumed_, " bytes of trailing garbage after gzip member ",
                             members_, ", from compressed byte ", consumed_, " (not another gzip member)");
                    GB_CHECK(inflateReset(&z_) == Z_OK, src_, ": zlib reset failed");
                }
                continue;
            }
            if (r == Z_BUF_ERROR && z_.avail_in == 0 && consumed_ == in_.size())
                GB_FAIL(src_, ": the gzip data is truncated at compressed byte ", consumed_, " (member ",
                        members_ + 1, " does not end; ", produced_ + got, " bytes were decompressed)");
            GB_CHECK(r == Z_OK || (r == Z_BUF_ERROR && z_.avail_out == 0), src_,
                     ": corrupt gzip data near compressed byte ", consumed_, " (member ", members_ + 1, "): ",
                     z_.msg ? z_.msg : zError(r));
        }
        produced_ += got;
        return got;
    }

private:
    size_t remaining_in() const { return in_.size() - consumed_; }

    const std::vector<uint8_t>& in_;
    const std::string& src_;
    bool gzip_ = false, open_ = false, done_ = false;
    z_stream z_{};
    size_t pos_ = 0, consumed_ = 0;
    uint64_t produced_ = 0;
    int members_ = 0;
};

void read_exact(Content& c, uint8_t* dst, size_t n, const std::string& src, const char* what) {
    const uint64_t at = c.produced();
    const size_t got = c.read(dst, n);
    GB_CHECK(got == n, src, " is truncated: the ", what, " at ", c.gzip() ? "decompressed " : "", "byte ", at,
             " needs ", n, " bytes, only ", got, " are there (the file ends at ", c.gzip() ? "decompressed " : "",
             "byte ", at + got, ")");
}

}  // namespace

IdxArray parse_idx(const std::vector<uint8_t>& bytes, const std::string& source, int64_t max_elements) {
    const std::string src = "'" + source + "'";
    Content c(bytes, source);
    uint8_t magic[4];
    read_exact(c, magic, 4, src, "header");
    GB_CHECK(magic[0] == 0 && magic[1] == 0, src, " is not an IDX file (bad magic ", int(magic[0]), " ",
             int(magic[1]), ")");
    GB_CHECK(magic[2] == 0x08, src, ": IDX data type 0x", std::hex, int(magic[2]),
             " is not supported (only unsigned bytes, 0x08)");
    const int ndims = magic[3];
    GB_CHECK(ndims >= 1 && ndims <= 4, src, ": IDX with ", ndims, " dimensions (expected 1 to 4)");
    IdxArray out;
    int64_t total = 1;
    for (int i = 0; i < ndims; ++i) {
        uint8_t b[4];
        read_exact(c, b, 4, src, "header");
        const int64_t d = (int64_t(b[0]) << 24) | (int64_t(b[1]) << 16) | (int64_t(b[2]) << 8) | int64_t(b[3]);
        GB_CHECK(d > 0, src, ": dimension ", i, " is 0 (header byte ", 4 + 4 * i, ")");
        GB_CHECK(d <= max_elements && total <= max_elements / d, src, ": header announces more than ", max_elements,
                 " elements (corrupt header?)");
        total *= d;
        out.dims.push_back(d);
    }
    // Before allocating: a plain file must hold the elements, and deflate expands at most 1032:1, so
    // a few bytes claiming 2^31 elements are refused here instead of zero-filling gigabytes first.
    const uint64_t can_hold = c.gzip() ? static_cast<uint64_t>(bytes.size()) * 1032 : bytes.size() - c.produced();
    GB_CHECK(static_cast<uint64_t>(total) <= can_hold, src, " is truncated: the header announces ", total,
             " elements, but ", c.gzip() ? "its " + std::to_string(bytes.size()) + " compressed bytes can hold at most "
                                         : std::string("the file holds "), can_hold, c.gzip() ? "" : " bytes after the header");
    out.data.resize(static_cast<size_t>(total));
    read_exact(c, out.data.data(), out.data.size(), src, "data");
    uint8_t extra[64];
    const uint64_t end = c.produced();
    const size_t more = c.read(extra, sizeof extra);
    GB_CHECK(more == 0, src, " has trailing bytes after the ", total, " elements its header announces (from ",
             c.gzip() ? "decompressed " : "", "byte ", end, ")");
    return out;
}

IdxArray read_idx(const std::string& path, int64_t max_elements) {
    // Compressed MNIST is a few tens of MB: holding it whole is cheap, and it lets a pipe be read.
    return parse_idx(read_file(path), path, max_elements);
}

}  // namespace gb::io
