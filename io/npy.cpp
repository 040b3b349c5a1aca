#include "io/npy.h"

#include <bit>
#include <cstring>
#include <optional>

#include "io/file_util.h"

namespace gb::io {

static_assert(std::endian::native == std::endian::little, "the .npy writer assumes a little-endian host");

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
constexpr size_t kAlign = 64;

const char* descr_of(DType t) { return t == DType::Int32 ? "<i4" : "<f4"; }

// A recursive-descent reader for the header dict numpy writes: a Python dict
// literal with the keys 'descr' (string), 'fortran_order' (bool) and 'shape'
// (tuple of non-negative ints), in any order.
class HeaderParser {
public:
    HeaderParser(const std::string& text, const std::string& src) : s_(text), src_(src) {}

    void parse(std::string& descr, bool& fortran, std::vector<int64_t>& shape) {
        std::optional<std::string> d;
        std::optional<bool> f;
        std::optional<std::vector<int64_t>> sh;
        expect('{');
        while (true) {
            skip_ws();
            if (peek() == '}') break;
            const std::string key = parse_string();
            expect(':');
            if (key == "descr") {
                GB_CHECK(!d, src_, ": .npy header has 'descr' twice");
                d = parse_string();
            } else if (key == "fortran_order") {
                GB_CHECK(!f, src_, ": .npy header has 'fortran_order' twice");
                f = parse_bool();
            } else if (key == "shape") {
                GB_CHECK(!sh, src_, ": .npy header has 'shape' twice");
                sh = parse_shape();
            } else {
                fail("unexpected key '" + key + "'");
            }
            skip_ws();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            GB_CHECK(peek() == '}', src_, ": malformed .npy header (expected ',' or '}' at offset ", pos_, "): ", s_);
        }
        ++pos_;
        while (pos_ < s_.size()) {
            GB_CHECK(s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r', src_,
                     ": malformed .npy header (text after the closing '}'): ", s_);
            ++pos_;
        }
        GB_CHECK(d && f && sh, src_, ": .npy header must have 'descr', 'fortran_order' and 'shape', got: ", s_);
        descr = *d;
        fortran = *f;
        shape = *sh;
    }

private:
    char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
    [[noreturn]] void fail(const std::string& what) const {
        GB_FAIL(src_, ": malformed .npy header (", what, " at offset ", pos_, "): ", s_);
    }
    void skip_ws() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
            ++pos_;
    }
    void expect(char c) {
        skip_ws();
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++pos_;
    }
    std::string parse_string() {
        skip_ws();
        const char q = peek();
        if (q != '\'' && q != '"') fail("expected a quoted string");
        const size_t end = s_.find(q, pos_ + 1);
        if (end == std::string::npos) fail("unterminated string");
        std::string out = s_.substr(pos_ + 1, end - pos_ - 1);
        pos_ = end + 1;
        return out;
    }
    bool parse_bool() {
        skip_ws();
        for (const bool v : {true, false}) {
            const std::string word = v ? "True" : "False";
            if (s_.compare(pos_, word.size(), word) == 0) {
                pos_ += word.size();
                return v;
            }
        }
        fail("expected True or False");
    }
    std::vector<int64_t> parse_shape() {
        expect('(');
        std::vector<int64_t> dims;
        bool trailing_comma = false;
        while (true) {
            skip_ws();
            if (peek() == ')') break;
            if (peek() < '0' || peek() > '9') fail("expected a non-negative integer in the shape");
            int64_t v = 0;
            while (peek() >= '0' && peek() <= '9') {
                v = v * 10 + (peek() - '0');
                if (v > (int64_t(1) << 40)) fail("shape dimension too large");
                ++pos_;
            }
            if (peek() == 'L') ++pos_;
            dims.push_back(v);
            skip_ws();
            trailing_comma = peek() == ',';
            if (trailing_comma) {
                ++pos_;
            } else if (peek() != ')') {
                fail("expected ',' or ')' in the shape");
            }
        }
        ++pos_;
        if (dims.size() == 1 && !trailing_comma) fail("a one-element shape must be written (n,)");
        return dims;
    }

    const std::string& s_;
    const std::string& src_;
    size_t pos_ = 0;
};

}  // namespace

std::string npy_header(DType dtype, const Shape& shape) {
    std::string dict = std::string("{'descr': '") + descr_of(dtype) + "', 'fortran_order': False, 'shape': (";
    for (int64_t i = 0; i < shape.rank(); ++i) {
        if (i) dict += ", ";
        dict += std::to_string(shape[i]);
    }
    if (shape.rank() == 1) dict += ",";
    dict += "), }";
    const size_t unpadded = kMagicLen + 2 + 2 + dict.size() + 1;  // + the final '\n'
    dict.append((kAlign - unpadded % kAlign) % kAlign, ' ');
    dict += '\n';
    return dict;
}

std::vector<uint8_t> encode_npy(const Tensor& t) {
    GB_CHECK(t.defined(), "encode_npy: undefined tensor");
    const Tensor host = t.to(Device::cpu());
    const std::string header = npy_header(host.dtype(), host.shape());
    GB_CHECK(header.size() <= 0xFFFF, "encode_npy: shape ", host.shape().str(), " needs a header longer than 65535 bytes");
    std::vector<uint8_t> out;
    out.reserve(kMagicLen + 4 + header.size() + host.nbytes());
    out.insert(out.end(), kMagic, kMagic + kMagicLen);
    out.push_back(1);
    out.push_back(0);
    out.push_back(static_cast<uint8_t>(header.size() & 0xFF));
    out.push_back(static_cast<uint8_t>(header.size() >> 8));
    out.insert(out.end(), header.begin(), header.end());
    const auto* data = static_cast<const uint8_t*>(host.raw_data());
    out.insert(out.end(), data, data + host.nbytes());
    return out;
}

void save_npy(const std::string& path, const Tensor& t) {
    const std::vector<uint8_t> bytes = encode_npy(t);
    write_file_atomic(path, [&](std::ostream& out) {
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    });
}

Tensor decode_npy(const std::vector<uint8_t>& bytes, const std::string& source) {
    GB_CHECK(bytes.size() >= kMagicLen + 2 && std::memcmp(bytes.data(), kMagic, kMagicLen) == 0, source,
             ": not a .npy file (missing the \\x93NUMPY magic)");
    const uint8_t major = bytes[6], minor = bytes[7];
    GB_CHECK((major == 1 || major == 2 || major == 3) && minor == 0, source, ": unsupported .npy format version ",
             int(major), ".", int(minor), " (expected 1.0, 2.0 or 3.0)");
    const size_t len_bytes = major == 1 ? 2 : 4;
    const size_t prefix = kMagicLen + 2 + len_bytes;
    GB_CHECK(bytes.size() >= prefix, source, ": truncated .npy file (", bytes.size(), " bytes, no header length)");
    uint64_t header_len = 0;
    for (size_t i = 0; i < len_bytes; ++i) header_len |= uint64_t(bytes[8 + i]) << (8 * i);
    GB_CHECK(header_len <= bytes.size() - prefix, source, ": truncated .npy file (header of ", header_len,
             " bytes, but only ", bytes.size() - prefix, " follow)");
    const std::string header(reinterpret_cast<const char*>(bytes.data()) + prefix, header_len);

    std::string descr;
    bool fortran = false;
    std::vector<int64_t> dims;
    HeaderParser(header, source).parse(descr, fortran, dims);
    DType dtype;
    if (descr == "<f4") {
        dtype = DType::Float32;
    } else if (descr == "<i4") {
        dtype = DType::Int32;
    } else {
        GB_FAIL(source, ": .npy dtype '", descr, "' is not supported (only '<f4' float32 and '<i4' int32)");
    }
    GB_CHECK(!fortran, source, ": .npy array is in Fortran order; only C order is supported");
    uint64_t numel = 1;
    for (int64_t d : dims) {
        GB_CHECK(d == 0 || numel <= (uint64_t(1) << 40) / static_cast<uint64_t>(d), source, ": .npy shape is absurdly large");
        numel *= static_cast<uint64_t>(d);
    }
    const uint64_t data_bytes = bytes.size() - prefix - header_len;
    const uint64_t data_at = prefix + header_len;
    GB_CHECK(data_bytes >= numel * 4, source, ": truncated file: shape ", Shape(dims).str(), " of ", descr,
             " needs ", numel * 4, " bytes of data from byte ", data_at, ", the file has ", data_bytes,
             " (it ends at byte ", bytes.size(), ")");
    GB_CHECK(data_bytes == numel * 4, source, ": .npy data section is ", data_bytes, " bytes, ", data_bytes - numel * 4,
             " more than shape ", Shape(dims).str(), " of ", descr, " needs: trailing garbage from byte ",
             data_at + numel * 4);
    Tensor t(Shape(dims), dtype);
    if (numel) std::memcpy(t.raw_data(), bytes.data() + prefix + header_len, numel * 4);
    return t;
}

Tensor load_npy(const std::string& path) { return decode_npy(read_file(path), path); }

}  // namespace gb::io
