// IDX files (the MNIST / Fashion-MNIST format): magic 0x0000 <type> <ndims>,
// ndims big-endian uint32 sizes, then the data. Plain or gzip-compressed
// (zlib reads both; a gzip file may hold several members back to back, as the
// gzip format allows). Only unsigned-byte data (type 0x08) is accepted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gb::io {

struct IdxArray {
    std::vector<int64_t> dims;
    std::vector<uint8_t> data;
};

// Validates magic, type and sizes before allocating (at most max_elements);
// a truncated file, trailing bytes or corrupt gzip data are a gb::Error naming the
// path and the byte offset. Reads the whole file (a pipe or FIFO works too).
IdxArray read_idx(const std::string& path, int64_t max_elements = int64_t(1) << 31);
// The same from the file's bytes (plain or gzip); `source` names them in messages.
IdxArray parse_idx(const std::vector<uint8_t>& bytes, const std::string& source,
                   int64_t max_elements = int64_t(1) << 31);

}  // namespace gb::io
