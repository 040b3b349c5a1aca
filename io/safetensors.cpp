// The safetensors reader and writer (format in safetensors.h).
//
// Reader (parse_safetensors), strict, in this order, every check naming the file and the byte at fault:
//   1. The 8-byte little-endian header length N: at most kMaxHeader (the reference's limit) and inside the file.
//   2. The header: starts with '{' (the spec), is valid JSON, has no key twice at any level (a JSON parser would keep
//      the last one silently, so a checker and a loader could see different tensors), and is an object.
//   3. parse_header: "__metadata__" an object of strings; each tensor a known dtype (any the format defines, so that
//      sizes can be checked), a shape of integers >= 0 whose element count stays under 2^40 (no overflow below),
//      data_offsets [begin, end] inside the data section, and exactly numel * bits / 8 bytes.
//   4. The tensors, ordered by (begin, end), tile the data section exactly: no hole, no overlap, nothing after.
//   5. Only then are tensors allocated and copied (make_tensor): F32 and I32 as they are, I64 narrowed to int32 with
//      a range check; any other dtype is an error, also for a tensor the caller does not need.
// The result lists the tensors in data-offset order; raw data are copied as they are, so the host is taken to be
// little-endian, as the format is.
// Writer (serialize_safetensors): F32 or I32 per the tensor's dtype (the only two glassbox has), offsets in the
// order of the given list, the header padded with spaces to a multiple of 8 bytes (the data section then starts
// 8-byte aligned, as the reference writer does), tensors copied to the host first. save_safetensors writes the
// bytes with io::write_file_atomic: a crash never leaves a half-written file under the final name.
#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "io/file_util.h"

namespace gb::io {

namespace {

using json = nlohmann::json;

// The reference implementation's limit (safetensors' MAX_HEADER_SIZE, 100'000'000 bytes).
constexpr uint64_t kMaxHeader = 100'000'000;

struct Entry {
    std::string name, dtype;
    std::vector<int64_t> shape;
    uint64_t numel = 0;
    uint64_t begin = 0, end = 0;
};

// Bits per element of every dtype the format defines (0: not a safetensors dtype). The sub-byte
// floats (F4, F6_*) pack elements, so a tensor's byte size is numel * bits / 8, a whole number.
unsigned dtype_bits(const std::string& d) {
    if (d == "F64" || d == "I64" || d == "U64" || d == "C64") return 64;
    if (d == "F32" || d == "I32" || d == "U32") return 32;
    if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 16;
    if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2" || d == "F8_E8M0") return 8;
    if (d == "F6_E2M3" || d == "F6_E3M2") return 6;
    if (d == "F4") return 4;
    return 0;
}

const char* kDtypes = "BOOL, U8, I8, F8_E4M3, F8_E5M2, F8_E8M0, F4, F6_E2M3, F6_E3M2, I16, U16, F16, BF16, I32, U32, "
                      "F32, F64, I64, U64, C64";

// Entries of the header in file order. `data_at` is the file offset of the data section, so that
// messages can give absolute byte offsets as well as the header's relative ones.
std::vector<Entry> parse_header(const json& header, const std::string& src, uint64_t data_at, uint64_t data_bytes,
                                std::map<std::string, std::string>& metadata) {
    GB_CHECK(header.is_object(), src, ": safetensors header is not a JSON object");
    std::vector<Entry> entries;
    for (const auto& [name, v] : header.items()) {
        if (name == "__metadata__") {
            GB_CHECK(v.is_object(), src, ": __metadata__ must be an object of strings");
            for (const auto& [k, s] : v.items()) {
                GB_CHECK(s.is_string(), src, ": metadata value of '", k, "' is not a string");
                metadata[k] = s.get<std::string>();
            }
            continue;
        }
        GB_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"), src,
                 ": tensor '", name, "' needs dtype, shape and data_offsets");
        Entry e;
        e.name = name;
        GB_CHECK(v.at("dtype").is_string(), src, ": tensor '", name, "': dtype is not a string");
        e.dtype = v.at("dtype").get<std::string>();
        const unsigned bits = dtype_bits(e.dtype);
        GB_CHECK(bits > 0, src, ": tensor '", name, "' has unknown dtype '", e.dtype, "' (the format defines ", kDtypes,
                 ")");
        GB_CHECK(v.at("shape").is_array(), src, ": tensor '", name, "': shape is not an array");
        // A dimension of 0 is legal (an empty tensor, begin == end); the product of the others
        // still has to stay bounded so that numel * bits cannot overflow.
        uint64_t numel = 1, nonzero = 1;
        for (const auto& d : v.at("shape")) {
            GB_CHECK(d.is_number_unsigned(), src, ": tensor '", name, "': shape entries must be integers >= 0");
            const uint64_t dim = d.get<uint64_t>();
            GB_CHECK(dim < (1ull << 40) && (dim == 0 || nonzero <= (1ull << 40) / dim), src, ": tensor '", name,
                     "': shape is absurdly large (more than 2^40 elements)");
            if (dim) nonzero *= dim;
            numel *= dim;
            e.shape.push_back(static_cast<int64_t>(dim));
        }
        e.numel = numel;
        const auto& off = v.at("data_offsets");
        GB_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
                 src, ": tensor '", name, "': data_offsets must be [begin, end] (integers >= 0)");
        e.begin = off[0].get<uint64_t>();
        e.end = off[1].get<uint64_t>();
        GB_CHECK(e.begin <= e.end, src, ": tensor '", name, "': data_offsets [", e.begin, ", ", e.end,
                 "] end before they begin");
        GB_CHECK(e.end <= data_bytes, src, ": tensor '", name, "': data_offsets [", e.begin, ", ", e.end,
                 "] end at file byte ", data_at + e.end, ", past the end of the ", data_bytes,
                 "-byte data section (file byte ", data_at + data_bytes, "; truncated file?)");
        GB_CHECK(numel * bits % 8 == 0, src, ": tensor '", name, "': ", numel, " elements of ", e.dtype,
                 " are not a whole number of bytes");
        GB_CHECK(e.end - e.begin == numel * bits / 8, src, ": tensor '", name, "': data_offsets [", e.begin, ", ",
                 e.end, "] hold ", e.end - e.begin, " bytes but shape ", Shape(e.shape).str(), " of ", e.dtype,
                 " needs ", numel * bits / 8);
        entries.push_back(std::move(e));
    }
    // The data section must be exactly tiled by the tensors, in offset order: no holes (which would
    // allow polyglot files), no overlaps, nothing after the last one. Empty tensors occupy [p, p];
    // ordering by (begin, end) puts them before a tensor that starts at the same place.
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    uint64_t pos = 0;
    const Entry* prev = nullptr;
    for (const Entry& e : entries) {
        if (e.begin != pos) {
            const std::string before = prev ? "the previous tensor '" + prev->name + "' ends at " + std::to_string(pos)
                                            : std::string("the data section starts at 0");
            GB_FAIL(src, ": tensor '", e.name, "' starts at data offset ", e.begin, " (file byte ", data_at + e.begin,
                    ") but ", before, e.begin > pos ? ": a hole of " : ": an overlap of ",
                    e.begin > pos ? e.begin - pos : pos - e.begin,
                    " bytes (the format requires the tensors to cover the data section contiguously)");
        }
        pos = e.end;
        prev = &e;
    }
    GB_CHECK(pos == data_bytes, src, ": ", data_bytes - pos, " trailing bytes after the last tensor, from file byte ",
             data_at + pos, " (the data section must end with the last tensor)");
    return entries;
}

Tensor make_tensor(const Entry& e, const uint8_t* data, const std::string& src) {
    const Shape shape(e.shape);
    const uint8_t* p = data + e.begin;
    if (e.dtype == "F32" || e.dtype == "I32") {
        Tensor t(shape, e.dtype == "F32" ? DType::Float32 : DType::Int32);
        if (e.end > e.begin) std::memcpy(t.raw_data(), p, e.end - e.begin);
        return t;
    }
    if (e.dtype == "I64") {
        Tensor t(shape, DType::Int32);
        int32_t* out = t.data<int32_t>();
        for (int64_t i = 0; i < shape.numel(); ++i) {
            int64_t v;
            std::memcpy(&v, p + 8 * i, 8);
            GB_CHECK(v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max(), src,
                     ": tensor '", e.name, "': I64 value ", v, " (element ", i, ") does not fit int32");
            out[i] = static_cast<int32_t>(v);
        }
        return t;
    }
    GB_FAIL(src, ": tensor '", e.name, "' has dtype ", e.dtype, "; glassbox reads F32, I32 and I64");
}

}  // namespace

bool SafeTensors::contains(const std::string& name) const {
    return std::any_of(tensors.begin(), tensors.end(), [&](const auto& t) { return t.first == name; });
}

const Tensor& SafeTensors::at(const std::string& name) const {
    for (const auto& [n, t] : tensors)
        if (n == name) return t;
    std::string have;
    for (const auto& [n, t] : tensors) have += (have.empty() ? "" : ", ") + n;
    GB_FAIL(source, ": no tensor named '", name, "' (the file has: ", have, ")");
}

SafeTensors parse_safetensors(const std::vector<uint8_t>& bytes, const std::string& source) {
    GB_CHECK(bytes.size() >= 8, source, ": too short for a safetensors file (", bytes.size(),
             " bytes; it starts with an 8-byte header length)");
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[static_cast<size_t>(i)];
    GB_CHECK(n <= kMaxHeader, source, ": header length ", n, " exceeds the ", kMaxHeader,
             "-byte limit of the format (not a safetensors file?)");
    GB_CHECK(n <= bytes.size() - 8, source, ": header length ", n, " runs past the end of the ", bytes.size(),
             "-byte file (it would end at byte ", 8 + n, "; truncated?)");
    // The spec: the header starts with '{' and may be padded at the end with spaces.
    GB_CHECK(n >= 2 && bytes[8] == '{', source, ": the safetensors header (file byte 8) does not start with '{'");
    json header;
    try {
        // Duplicate keys are disallowed by the format; a JSON parser would keep the last silently.
        std::vector<std::set<std::string>> keys;
        // nlohmann reports an object_start at the depth outside it and its keys one deeper, hence keys[depth - 1].
        // A gb::Error thrown here is not a json::exception and passes the catch below unchanged.
        json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
            if (event == json::parse_event_t::object_start) {
                keys.resize(static_cast<size_t>(depth) + 1);
                keys[static_cast<size_t>(depth)].clear();
            } else if (event == json::parse_event_t::key && depth >= 1 && keys.size() >= static_cast<size_t>(depth)) {
                const std::string& k = parsed.get_ref<const std::string&>();
                GB_CHECK(keys[static_cast<size_t>(depth) - 1].insert(k).second, source,
                         ": the safetensors header has the key '", k, "' twice (duplicate keys are not allowed)");
            }
            return true;
        };
        header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n), cb);
    } catch (const json::exception& e) {
        GB_FAIL(source, ": the safetensors header (file bytes 8 to ", 8 + n, ") is not valid JSON: ", e.what());
    }
    SafeTensors out;
    out.source = source;
    const uint64_t data_bytes = bytes.size() - 8 - n;
    // Everything is validated (parse_header) before the first tensor is allocated: a hostile header cannot make the
    // reader allocate what the file does not hold.
    try {
        const std::vector<Entry> entries = parse_header(header, source, 8 + n, data_bytes, out.metadata);
        const uint8_t* data = bytes.data() + 8 + n;
        for (const Entry& e : entries) out.tensors.emplace_back(e.name, make_tensor(e, data, source));
    } catch (const json::exception& e) {  // a type the checks above missed: still the file's fault
        GB_FAIL(source, ": malformed safetensors header: ", e.what());
    }
    return out;
}

SafeTensors load_safetensors(const std::string& path) { return parse_safetensors(read_file(path), path); }

std::vector<uint8_t> serialize_safetensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                                           const std::map<std::string, std::string>& metadata) {
    json header = json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    uint64_t pos = 0;
    for (const auto& [name, t] : tensors) {
        GB_CHECK(!name.empty() && name != "__metadata__", "safetensors: invalid tensor name '", name, "'");
        GB_CHECK(!header.contains(name), "safetensors: two tensors are named '", name, "'");
        const uint64_t nb = t.nbytes();
        header[name] = {{"dtype", t.dtype() == DType::Float32 ? "F32" : "I32"},
                        {"shape", t.shape().dims()},
                        {"data_offsets", {pos, pos + nb}}};
        pos += nb;
    }
    std::string text = header.dump();
    while (text.size() % 8) text.push_back(' ');
    std::vector<uint8_t> out(8 + text.size() + pos);
    const uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<uint8_t>(n >> (8 * i));
    std::memcpy(out.data() + 8, text.data(), text.size());
    uint8_t* data = out.data() + 8 + text.size();
    for (const auto& [name, t] : tensors) {
        const Tensor host = t.to(Device::cpu());
        if (host.nbytes() == 0) continue;  // an empty tensor: [pos, pos] in the header, no data
        std::memcpy(data, host.raw_data(), host.nbytes());
        data += host.nbytes();
    }
    return out;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
    const std::vector<uint8_t> bytes = serialize_safetensors(tensors, metadata);
    write_file_atomic(path, [&](std::ostream& out) {
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    });
}

}  // namespace gb::io
