// libFuzzer harness: the .npy reader on arbitrary bytes (only gb::Error may escape it).
#include "core/error.h"
#include "io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::vector<uint8_t> bytes(data, data + size);
    try {
        const gb::Tensor t = gb::io::decode_npy(bytes, "fuzz.npy");
        // What was read must survive the writer (header length, shape text).
        (void)gb::io::encode_npy(t);
    } catch (const gb::Error&) {
    }
    return 0;
}
