// libFuzzer harness: the safetensors reader on arbitrary bytes. Any exception other than
// gb::Error escapes and aborts, which libFuzzer reports as a crash, as does any sanitizer finding.
#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::vector<uint8_t> bytes(data, data + size);
    try {
        const gb::io::SafeTensors f = gb::io::parse_safetensors(bytes, "fuzz.safetensors");
        for (const auto& [name, t] : f.tensors) (void)t.nbytes();
    } catch (const gb::Error&) {
    }
    return 0;
}
