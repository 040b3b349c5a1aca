// Portable micro-kernel of the packed SGEMM (gemm.cpp): a 4 x 16 tile in plain
// C++ that the compiler vectorises for whatever the build targets (SSE2 on a
// baseline x86-64, NEON on AArch64). It computes m full-width rows from the
// zero-padded B panel and stores their first n columns.
#include "kernels/cpu/gemm_kernel.h"
#include "kernels/cpu/gemm_kernel_parts.h"

namespace gb::kernels::cpu {

namespace {

constexpr int64_t MR = 4;
constexpr int64_t NR = 16;

void run(int64_t kc, const float* __restrict a, const float* __restrict b, int64_t m, int64_t n, float* c,
         int64_t ldc, const TileStore& s) {
    float acc[MR][NR] = {};
    for (int64_t k = 0; k < kc; ++k, a += MR, b += NR)
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
    store_tile(&acc[0][0], NR, m, n, c, ldc, s);
}

// Multiply-adds on NR-wide rows, vectorised as the build targets (the micro-kernel's own arithmetic).
double fma_loop(int64_t iters) {
    constexpr int kChains = 4;
    float acc[kChains][NR];
    for (int i = 0; i < kChains; ++i)
        for (int64_t j = 0; j < NR; ++j) acc[i][j] = 1.f + 0.01f * static_cast<float>(i + j);
    for (int64_t it = 0; it < iters; ++it)
        for (int i = 0; i < kChains; ++i)
            for (int64_t j = 0; j < NR; ++j) acc[i][j] = acc[i][j] * 0.9999f + 1e-4f;
    float s = 0;
    for (int i = 0; i < kChains; ++i)
        for (int64_t j = 0; j < NR; ++j) s += acc[i][j];
    volatile float sink = s;
    (void)sink;
    return 2.0 * NR * kChains * static_cast<double>(iters);
}

constexpr MicroKernel kKernel{MR, NR, 256, 128, 2048, pack_a<MR>, pack_b<NR>, run, nullptr, fma_loop};

}  // namespace

const MicroKernel& scalar_micro_kernel() { return kKernel; }

}  // namespace gb::kernels::cpu
