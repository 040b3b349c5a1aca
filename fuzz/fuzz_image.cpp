// libFuzzer harness: the image loader (format sniffing, header size checks, PNG/PNM extent checks,
// stb decoding, channel conversion) on arbitrary bytes.
#include "core/error.h"
#include "io/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::vector<uint8_t> bytes(data, data + size);
    // 2^20 pixels: enough for every corpus file, small enough that a claimed huge image is refused
    // by the size check rather than exhausting the fuzzer's memory limit.
    constexpr int64_t kPixels = int64_t(1) << 20;
    for (const int64_t channels : {0, 1, 3}) {
        try {
            std::vector<std::string> notes;
            const gb::Tensor t = gb::io::decode_image(bytes, "fuzz.img", channels, &notes, kPixels);
            for (const float v : t.to_vector<float>())
                if (!(v >= 0.f && v <= 1.f)) __builtin_trap();  // values are documented to be in [0, 1]
        } catch (const gb::Error&) {
            return 0;  // the other channel counts fail the same way
        }
    }
    return 0;
}
