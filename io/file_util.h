// Small file helpers: read a whole file with a size cap, and write a file
// atomically (temporary file in the same folder, flushed, then renamed), so an
// interrupted write never leaves a half-written file under the final name.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace gb::io {

// Whole file; gb::Error naming the path when unreadable or larger than max_bytes. Works on
// anything that can be read to its end: regular files, pipes, FIFOs, /dev/fd/N, /dev/stdin
// (a stream is read in chunks until end of file, never sized or seeked).
std::vector<uint8_t> read_file(const std::string& path, uint64_t max_bytes = (1ull << 34));
// Size of a regular file; gb::Error naming the path otherwise (a pipe has no size: use read_file).
uint64_t file_size(const std::string& path);

// Calls write(stream) on a temporary file next to `path`, then renames it over `path`.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace gb::io
