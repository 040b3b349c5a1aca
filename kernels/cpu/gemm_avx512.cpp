// AVX-512F micro-kernel of the packed SGEMM (gemm.cpp): a 12 x 32 register tile
// held in 24 zmm accumulators; each step of k loads two vectors of the B panel
// and broadcasts 12 elements of the A panel (BLIS's broadcast-A scheme for
// row-major C). Edge tiles run the same code instantiated for fewer rows or
// vectors, with masked loads and stores of the last partial vector of C.
// CMake compiles this file with -mavx512f -mfma on x86-64; gemm.cpp calls it only
// when the CPU has AVX-512F.
#include "kernels/cpu/gemm_kernel.h"

#if defined(__AVX512F__) && defined(__FMA__)

#include <immintrin.h>

#include "kernels/cpu/gemm_pack.h"

namespace gb::kernels::cpu {

namespace {

constexpr int MR = 12;
constexpr int NV = 2;  // zmm vectors per tile row
constexpr int NR = 16 * NV;

// Lanes [0, n) of a 16-lane vector (all of them when n >= 16).
__mmask16 lanes(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1u); }

template <int M, int V>
void tile(int64_t kc, const float* __restrict a, const float* __restrict b, int64_t n, float* __restrict c,
          int64_t ldc, const TileStore& s) {
    __m512 acc[M][V];
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
#pragma GCC unroll 4
        for (int j = 0; j < V; ++j) acc[i][j] = _mm512_setzero_ps();
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    }
    for (int64_t k = 0; k < kc; ++k, a += MR, b += NR) {
        __m512 bv[V];
#pragma GCC unroll 4
        for (int j = 0; j < V; ++j) bv[j] = _mm512_load_ps(b + 16 * j);
#pragma GCC unroll 16
        for (int i = 0; i < M; ++i) {
            const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 4
            for (int j = 0; j < V; ++j) acc[i][j] = _mm512_fmadd_ps(ai, bv[j], acc[i][j]);
        }
    }
    const __m512 alpha = _mm512_set1_ps(s.alpha), beta = _mm512_set1_ps(s.beta), zero = _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
        float* ci = c + i * ldc;
#pragma GCC unroll 4
        for (int j = 0; j < V; ++j) {
            const __mmask16 m = j == V - 1 ? lanes(n - 16 * j) : __mmask16(0xFFFF);
            __m512 v = _mm512_mul_ps(alpha, acc[i][j]);
            if (s.beta != 0.f) v = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(m, ci + 16 * j), v);
            if (s.row_bias) v = _mm512_add_ps(v, _mm512_set1_ps(s.row_bias[i]));
            if (s.col_bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, s.col_bias + 16 * j));
            // (The maskz form: GCC 12 warns about the undefined pass-through of _mm512_max_ps.)
            if (s.relu) v = _mm512_maskz_max_ps(m, zero, v);  // NaN stays NaN, as in common/activation.h
            _mm512_mask_storeu_ps(ci + 16 * j, m, v);
        }
    }
}

// The instantiation for m rows (M >= m) and ceil(n / 16) vectors (V >= that).
template <int M, int V>
void dispatch(int64_t kc, const float* a, const float* b, int64_t m, int64_t n, float* c, int64_t ldc,
              const TileStore& s) {
    if constexpr (M > 1)
        if (m < M) return dispatch<M - 1, V>(kc, a, b, m, n, c, ldc, s);
    if constexpr (V > 1)
        if (n <= 16 * (V - 1)) return dispatch<M, V - 1>(kc, a, b, m, n, c, ldc, s);
    tile<M, V>(kc, a, b, n, c, ldc, s);
}

void run(int64_t kc, const float* a, const float* b, int64_t m, int64_t n, float* c, int64_t ldc,
         const TileStore& s) {
    dispatch<MR, NV>(kc, a, b, m, n, c, ldc, s);
}

constexpr MicroKernel kKernel{MR, NR, 256, 144, 2048, pack_a<MR>, pack_b<NR>, run};

}  // namespace

const MicroKernel* avx512_micro_kernel() { return &kKernel; }

}  // namespace gb::kernels::cpu

#else

const gb::kernels::cpu::MicroKernel* gb::kernels::cpu::avx512_micro_kernel() { return nullptr; }

#endif
