// main() of test_distributed: the job's processes first (core/distributed.h: MPI under mpirun in an MPI
// build, else one process), then doctest. Every rank runs every test case, in the same order, so the
// collectives inside them meet; a failure on any rank fails the rank's exit status and so mpirun's.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <iostream>

#include "core/distributed.h"

int main(int argc, char** argv) {
    try {
        gb::dist::init(&argc, &argv);
    } catch (const std::exception& e) {
        std::cerr << "test_distributed: " << e.what() << "\n";
        return 1;
    }
    doctest::Context context(argc, argv);
    const int failed = context.run();
    gb::dist::finalize();
    return failed;
}
