#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "io/file_util.h"

namespace gb::io {

namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeader = 100ull << 20;  // the reference implementation's limit

struct Entry {
    std::string name, dtype;
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;
};

size_t dtype_bytes(const std::string& d) {
    if (d == "F64" || d == "I64" || d == "U64") return 8;
    if (d == "F32" || d == "I32" || d == "U32") return 4;
    if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
    if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
    return 0;
}

std::vector<Entry> parse_header(const json& header, const std::string& src, uint64_t data_bytes,
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
        GB_CHECK(v["dtype"].is_string(), src, ": tensor '", name, "': dtype is not a string");
        e.dtype = v["dtype"].get<std::string>();
        const size_t eb = dtype_bytes(e.dtype);
        GB_CHECK(eb > 0, src, ": tensor '", name, "' has unknown dtype '", e.dtype, "'");
        GB_CHECK(v["shape"].is_array(), src, ": tensor '", name, "': shape is not an array");
        uint64_t numel = 1;
        for (const auto& d : v["shape"]) {
            GB_CHECK(d.is_number_unsigned(), src, ": tensor '", name, "': shape entries must be integers >= 0");
            const uint64_t dim = d.get<uint64_t>();
            GB_CHECK(dim < (1ull << 40) && (dim == 0 || numel <= (1ull << 40) / dim), src, ": tensor '", name,
                     "': shape is absurdly large");
            numel *= dim;
            e.shape.push_back(static_cast<int64_t>(dim));
        }
        const auto& off = v["data_offsets"];
        GB_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
                 src, ": tensor '", name, "': data_offsets must be [begin, end]");
        e.begin = off[0].get<uint64_t>();
        e.end = off[1].get<uint64_t>();
        GB_CHECK(e.begin <= e.end && e.end <= data_bytes, src, ": tensor '", name, "': data_offsets [", e.begin, ", ",
                 e.end, "] outside the ", data_bytes, "-byte data section (truncated file?)");
        GB_CHECK(e.end - e.begin == numel * eb, src, ": tensor '", name, "': ", e.end - e.begin,
                 " bytes of data for ", numel, " elements of ", e.dtype);
        entries.push_back(std::move(e));
    }
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
    uint64_t pos = 0;
    for (const Entry& e : entries) {
        GB_CHECK(e.begin == pos, src, ": tensor '", e.name, "' starts at byte ", e.begin, " but the previous ends at ",
                 pos, " (overlap or hole in the data section)");
        pos = e.end;
    }
    GB_CHECK(pos == data_bytes, src, ": ", data_bytes - pos, " trailing bytes after the last tensor");
    return entries;
}

Tensor make_tensor(const Entry& e, const uint8_t* data, const std::string& src) {
    const Shape shape(e.shape);
    const uint8_t* p = data + e.begin;
    if (e.dtype == "F32" || e.dtype == "I32") {
        Tensor t(shape, e.dtype == "F32" ? DType::Float32 : DType::Int32);
        std::memcpy(t.raw_data(), p, e.end - e.begin);
        return t;
    }
    if (e.dtype == "I64") {
        Tensor t(shape, DType::Int32);
        int32_t* out = t.data<int32_t>();
        for (int64_t i = 0; i < shape.numel(); ++i) {
            int64_t v;
            std::memcpy(&v, p + 8 * i, 8);
            GB_CHECK(v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max(), src,
                     ": tensor '", e.name, "': I64 value ", v, " does not fit int32");
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
    GB_CHECK(bytes.size() >= 8, source, ": too short for a safetensors file (", bytes.size(), " bytes)");
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[static_cast<size_t>(i)];
    GB_CHECK(n <= kMaxHeader, source, ": header length ", n, " exceeds the 100 MiB limit (not a safetensors file?)");
    GB_CHECK(n <= bytes.size() - 8, source, ": header length ", n, " runs past the end of the ", bytes.size(),
             "-byte file (truncated?)");
    json header;
    try {
        header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
    } catch (const json::exception& e) {
        GB_FAIL(source, ": the safetensors header is not valid JSON: ", e.what());
    }
    SafeTensors out;
    out.source = source;
    const uint64_t data_bytes = bytes.size() - 8 - n;
    const std::vector<Entry> entries = parse_header(header, source, data_bytes, out.metadata);
    const uint8_t* data = bytes.data() + 8 + n;
    for (const Entry& e : entries) out.tensors.emplace_back(e.name, make_tensor(e, data, source));
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
