// safetensors (https://github.com/huggingface/safetensors): 8-byte little-endian
// header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
// "__metadata__": {string: string}}, then the raw little-endian data (offsets
// relative to its start). Reads F32 and I32 as they are and I64 as int32 (values
// must fit); writes F32 and I32. Writes are atomic (temporary file + rename).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "../core/tensor.h"

namespace gb::io {

struct SafeTensors {
    std::vector<std::pair<std::string, Tensor>> tensors;  // in file order (by data offset)
    std::map<std::string, std::string> metadata;

    bool contains(const std::string& name) const;
    // The tensor called `name`; gb::Error listing what the file has otherwise.
    const Tensor& at(const std::string& name) const;
    std::string source;  // the path it was read from, for messages
};

// Parses and validates the whole file (header size, JSON, dtypes, shapes, offsets
// in range, no overlaps or holes) before allocating tensors; errors name the file.
SafeTensors load_safetensors(const std::string& path);
SafeTensors parse_safetensors(const std::vector<uint8_t>& bytes, const std::string& source);

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
std::vector<uint8_t> serialize_safetensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                                           const std::map<std::string, std::string>& metadata = {});

}  // namespace gb::io
