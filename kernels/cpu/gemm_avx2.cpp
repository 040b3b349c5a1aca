// AVX2 + FMA micro-kernel of the packed SGEMM (gemm.cpp): a 6 x 16 register tile
// held in 12 ymm accumulators; each step of k loads two vectors of the B panel
// and broadcasts 6 elements of the A panel. Edge tiles run the same code
// instantiated for fewer rows or vectors, with masked loads and stores of the
// last partial vector of C. CMake compiles this file with -mavx2 -mfma on
// x86-64; gemm.cpp calls it only when the CPU has AVX2 and FMA.
#include "kernels/cpu/gemm_kernel.h"

#if defined(__AVX2__) && defined(__FMA__)

#include <immintrin.h>

#include "kernels/cpu/gemm_kernel_parts.h"

namespace gb::kernels::cpu {

namespace {

constexpr int MR = 6;
constexpr int NV = 2;  // ymm vectors per tile row
constexpr int NR = 8 * NV;

// Lanes [0, n) of an 8-lane vector as a maskload/maskstore mask (all when n >= 8).
__m256i lanes(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n < 8 ? n : 8)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

template <int M, int V>
void tile(int64_t kc, const float* __restrict a, const float* __restrict b, int64_t n, float* __restrict c,
          int64_t ldc, const TileStore& s) {
    __m256 acc[M][V];
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
#pragma GCC unroll 4
        for (int j = 0; j < V; ++j) acc[i][j] = _mm256_setzero_ps();
        if (!s.transposed) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    }
    for (int64_t k = 0; k < kc; ++k, a += MR, b += NR) {
        __m256 bv[V];
#pragma GCC unroll 4
        for (int j = 0; j < V; ++j) bv[j] = _mm256_load_ps(b + 8 * j);
#pragma GCC unroll 8
        for (int i = 0; i < M; ++i) {
            const __m256 ai = _mm256_broadcast_ss(a + i);
#pragma GCC unroll 4
            for (int j = 0; j < V; ++j) acc[i][j] = _mm256_fmadd_ps(ai, bv[j], acc[i][j]);
        }
    }
    if (s.transposed) {  // rare (C with few columns): spill and store element by element
        alignas(64) float t[M * V * 8];
        for (int i = 0; i < M; ++i)
            for (int j = 0; j < V; ++j) _mm256_store_ps(t + (i * V + j) * 8, acc[i][j]);
        return store_tile(t, V * 8, M, n, c, ldc, s);
    }
    const __m256 alpha = _mm256_set1_ps(s.alpha), beta = _mm256_set1_ps(s.beta), zero = _mm256_setzero_ps();
    const __m256i last = lanes(n - 8 * (V - 1)), all = _mm256_set1_epi32(-1);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
        float* ci = c + i * ldc;
#pragma GCC unroll 4
        for (int j = 0; j < V; ++j) {
            const __m256i m = j == V - 1 ? last : all;
            __m256 v = _mm256_mul_ps(alpha, acc[i][j]);
            if (s.beta != 0.f) v = _mm256_fmadd_ps(beta, _mm256_maskload_ps(ci + 8 * j, m), v);
            if (s.row_bias) v = _mm256_add_ps(v, _mm256_set1_ps(s.row_bias[i]));
            if (s.col_bias) v = _mm256_add_ps(v, _mm256_maskload_ps(s.col_bias + 8 * j, m));
            if (s.relu) v = _mm256_max_ps(zero, v);  // NaN stays NaN, as in common/activation.h
            _mm256_maskstore_ps(ci + 8 * j, m, v);
        }
    }
}

// The instantiation for m rows (M >= m) and ceil(n / 8) vectors (V >= that).
template <int M, int V>
void dispatch(int64_t kc, const float* a, const float* b, int64_t m, int64_t n, float* c, int64_t ldc,
              const TileStore& s) {
    if constexpr (M > 1)
        if (m < M) return dispatch<M - 1, V>(kc, a, b, m, n, c, ldc, s);
    if constexpr (V > 1)
        if (n <= 8 * (V - 1)) return dispatch<M, V - 1>(kc, a, b, m, n, c, ldc, s);
    tile<M, V>(kc, a, b, n, c, ldc, s);
}

void run(int64_t kc, const float* a, const float* b, int64_t m, int64_t n, float* c, int64_t ldc,
         const TileStore& s) {
    dispatch<MR, NV>(kc, a, b, m, n, c, ldc, s);
}

double fma_loop(int64_t iters) {
    return fma_chains<__m256, 8>(iters, [](float v) { return _mm256_set1_ps(v); },
                                 [](__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); });
}

constexpr MicroKernel kKernel{MR, NR, 256, 96, 2048, pack_a<MR>, pack_b<NR>, run, nullptr, fma_loop};

}  // namespace

const MicroKernel* avx2_micro_kernel() { return &kKernel; }

}  // namespace gb::kernels::cpu

#else

const gb::kernels::cpu::MicroKernel* gb::kernels::cpu::avx2_micro_kernel() { return nullptr; }

#endif
