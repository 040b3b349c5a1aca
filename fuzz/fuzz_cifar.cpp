// libFuzzer harness: the CIFAR binary reader on arbitrary bytes, as CIFAR-10 and as CIFAR-100
// (coarse and fine labels).
#include "core/error.h"
#include "io/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::vector<std::vector<uint8_t>> batches{std::vector<uint8_t>(data, data + size)};
    const std::vector<std::string> names{"fuzz.bin"};
    for (int variant = 0; variant < 3; ++variant) {
        try {
            const bool c100 = variant > 0;
            const gb::io::Dataset d =
                gb::io::parse_cifar(batches, names, c100 ? 100 : 10, c100, variant == 2, {}, "fuzz");
            if (d.size() * (c100 ? 3074 : 3073) != static_cast<int64_t>(size)) __builtin_trap();
        } catch (const gb::Error&) {
        }
    }
    return 0;
}
