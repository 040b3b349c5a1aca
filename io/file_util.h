// Small file helpers: read a whole file with a size cap, and write a file
// atomically and durably (temporary file in the same folder, written, fsync'ed,
// renamed over the target, then the folder fsync'ed), so an interrupted write or
// a power loss never leaves a half-written file under the final name, and a
// file that write_file_atomic returned for is on disk.
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

// Calls write(stream) on `<path>.tmp.<pid>`, flushes and fsyncs it, renames it
// over `path` and fsyncs the folder. On any failure (write() throwing, a short
// write, fsync or rename failing) the temporary is removed and a gb::Error names
// the path and the system's reason (strerror), e.g. "No space left on device".
// Temporaries of the same target left by processes that no longer exist (a kill
// during a write) are removed first.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);

// One CSV field (RFC 4180): as it is, or in double quotes (inner quotes doubled) when it holds a comma, a
// quote or a line break, e.g. a method spec "occlusion:window=7,stride=7".
std::string csv_field(const std::string& text);

// Removes `<path>.tmp.<pid>` files whose process no longer exists (kill(pid, 0)
// fails with ESRCH); a live process's temporary, this process's and anything
// else are left alone. Returns how many were removed. Best effort: never throws.
int remove_stale_temporaries(const std::string& path);

}  // namespace gb::io
