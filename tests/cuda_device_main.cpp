// The doctest main of the CUDA device's tests: where no GPU is usable (a CUDA
// build on a machine without one) it says why and exits with 77, which ctest
// reports as "Skipped" (SKIP_RETURN_CODE), never as passed. The emulated CUDA
// device (glassbox_cuda_emulated) always has cuda:0, so its tests always run.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <iostream>

#include "core/cuda_runtime.h"

int main(int argc, char** argv) {
    if (gb::cuda::device_count() == 0) {
        std::cout << "skipped, no usable GPU: " << gb::cuda::unavailable_reason() << "\n";
        return 77;
    }
    std::cout << "CUDA device 0: " << gb::cuda::device_name(0) << "\n";
    doctest::Context context(argc, argv);
    return context.run();
}
