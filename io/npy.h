// NumPy .npy files (format 1.0) for float32 and int32 tensors of any rank, so
// relevance maps and CAMs can be opened with numpy.load. The writer emits
// `{'descr': '<f4', 'fortran_order': False, 'shape': (d0, d1, ), }` padded with
// spaces and '\n' to a 64-byte boundary, then little-endian C-order data, and
// writes atomically. The reader accepts the same subset (little-endian f4/i4,
// C order; header versions 1.0, 2.0 and 3.0) and raises gb::Error naming the
// file for anything else: bad magic or version, a malformed header dict, an
// unsupported dtype, Fortran order, or a data section of the wrong size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/tensor.h"

namespace gb::io {

// The header dict, padded so that magic + version + length + header is a multiple of 64.
std::string npy_header(DType dtype, const Shape& shape);

// The whole file as bytes (a CUDA tensor is copied to the host first).
std::vector<uint8_t> encode_npy(const Tensor& t);
void save_npy(const std::string& path, const Tensor& t);

// `source` names the bytes in error messages (normally the file path).
Tensor decode_npy(const std::vector<uint8_t>& bytes, const std::string& source);
Tensor load_npy(const std::string& path);

}  // namespace gb::io
