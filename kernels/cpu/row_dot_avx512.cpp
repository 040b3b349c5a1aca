// AVX-512F row_dot (row_dot.h): tiles of 4 rows of A x 6 rows of B held in 24
// zmm accumulators, 16 products per lane along t, each accumulator reduced
// once at the end. Per step of 16: 4 + 6 vector loads for 24 FMAs. The loop
// runs A's 4 rows against every tile of B before moving on, so those 4 rows
// stay in L1 while B's rows stream (shifted views of one image overlap and
// mostly hit L1 too). CMake compiles this file with -mavx512f -mfma on x86-64;
// conv.cpp calls it only when the GEMM runs its AVX-512 micro-kernel.
#include "kernels/cpu/row_dot.h"

#if defined(__AVX512F__) && defined(__FMA__)

#include <immintrin.h>

#include <algorithm>

#include "core/parallel.h"

namespace gb::kernels::cpu {

namespace {

constexpr int TM = 4;  // rows of A per tile
constexpr int TN = 6;  // rows of B per tile

__mmask16 lanes(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1u); }

// Lane l of the result = the sum of the 16 lanes of v[l]: a tree of 15 adds and
// 30 shuffles instead of 16 separate reductions (~10 instructions each), which
// matter when the rows are short (a 14x14 map: 14 steps of 24 FMAs per tile).
__m512 reduce16(const __m512 v[16]) {
    constexpr __mmask16 all = 0xFFFF;
    __m512 s[8], t[4], u[2];
    // Feed v[4j + e] in at position 4e + j: the tree leaves position p's sum in lane
    // 4 * (p % 4) + p / 4.
    for (int i = 0; i < 8; ++i) {  // quads: [A.q0 + A.q2, A.q1 + A.q3, B.q0 + B.q2, B.q1 + B.q3]
        const int p = 2 * i, q = 2 * i + 1;
        const __m512 A = v[4 * (p % 4) + p / 4], B = v[4 * (q % 4) + q / 4];
        s[i] = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(all, A, B, 0x44), _mm512_maskz_shuffle_f32x4(all, A, B, 0xEE));
    }
    for (int i = 0; i < 4; ++i)  // quad j of t[i]: a 4-lane partial of position 4i + j
        t[i] = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(all, s[2 * i], s[2 * i + 1], 0x88),
                             _mm512_maskz_shuffle_f32x4(all, s[2 * i], s[2 * i + 1], 0xDD));
    for (int i = 0; i < 2; ++i)  // quad j of u[i]: 2 lanes of position 8i + j, 2 of 8i + 4 + j
        u[i] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * i], t[2 * i + 1], 0x44),
                             _mm512_shuffle_ps(t[2 * i], t[2 * i + 1], 0xEE));
    // lane 4j + e: position 4e + j
    return _mm512_add_ps(_mm512_shuffle_ps(u[0], u[1], 0x88), _mm512_shuffle_ps(u[0], u[1], 0xDD));
}

template <int M, int N>
void tile(int64_t n, const float* __restrict a, int64_t lda, const float* const* rows, float beta,
          float* __restrict c, int64_t ldc) {
    __m512 acc[M][N];
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < N; ++j) acc[i][j] = _mm512_setzero_ps();
    const float* b[N];
#pragma GCC unroll 8
    for (int j = 0; j < N; ++j) b[j] = rows[j];
    int64_t t = 0;
    for (; t + 16 <= n; t += 16) {
        __m512 av[M];
#pragma GCC unroll 8
        for (int i = 0; i < M; ++i) av[i] = _mm512_loadu_ps(a + i * lda + t);
#pragma GCC unroll 8
        for (int j = 0; j < N; ++j) {
            __m512 bv = _mm512_loadu_ps(b[j] + t);
            // Keeps bv in a register: GCC otherwise folds the load into each of the M
            // FMAs, M loads (often split over two cache lines) instead of one.
            asm("" : "+v"(bv));
#pragma GCC unroll 8
            for (int i = 0; i < M; ++i) acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
        }
    }
    if (t < n) {  // the last partial vector: lanes past n are loaded as 0 and never read
        const __mmask16 m = lanes(n - t);
        __m512 av[M];
#pragma GCC unroll 8
        for (int i = 0; i < M; ++i) av[i] = _mm512_maskz_loadu_ps(m, a + i * lda + t);
#pragma GCC unroll 8
        for (int j = 0; j < N; ++j) {
            const __m512 bv = _mm512_maskz_loadu_ps(m, b[j] + t);
#pragma GCC unroll 8
            for (int i = 0; i < M; ++i) acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
        }
    }
    constexpr int groups = (M * N + 15) / 16;
    alignas(64) float sums[16 * groups];
    for (int g = 0; g < groups; ++g) {
        __m512 v[16];
        for (int e = 0; e < 16; ++e) {
            const int f = 16 * g + e;
            v[e] = f < M * N ? acc[f / N][f % N] : _mm512_setzero_ps();
        }
        _mm512_store_ps(sums + 16 * g, reduce16(v));
    }
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
            float& out = c[i * ldc + j];
            out = beta == 0.f ? sums[i * N + j] : beta * out + sums[i * N + j];
        }
}

// The instantiation for an m x nb edge tile (m <= M, nb <= N).
template <int M, int N>
void dispatch(int64_t m, int64_t nb, int64_t n, const float* a, int64_t lda, const float* const* rows, float beta,
              float* c, int64_t ldc) {
    if constexpr (M > 1)
        if (m < M) return dispatch<M - 1, N>(m, nb, n, a, lda, rows, beta, c, ldc);
    if constexpr (N > 1)
        if (nb < N) return dispatch<M, N - 1>(m, nb, n, a, lda, rows, beta, c, ldc);
    tile<M, N>(n, a, lda, rows, beta, c, ldc);
}

void row_dot(int64_t M, int64_t N, int64_t n, const float* A, int64_t lda, const float* const* rows, float beta,
             float* C, int64_t ldc) {
    const int64_t tiles_m = (M + TM - 1) / TM;
    // Threads take whole rows of tiles; at least ~0.25 MFLOP each.
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 17) / std::max<int64_t>(1, TM * N * n));
    parallel_for(0, tiles_m, grain, [&](int64_t t0, int64_t t1) {
        for (int64_t ti = t0; ti < t1; ++ti) {
            const int64_t i0 = ti * TM, m = std::min<int64_t>(TM, M - i0);
            for (int64_t j0 = 0; j0 < N; j0 += TN)
                dispatch<TM, TN>(m, std::min<int64_t>(TN, N - j0), n, A + i0 * lda, lda, rows + j0, beta,
                                 C + i0 * ldc + j0, ldc);
        }
    });
}

}  // namespace

RowDotFn avx512_row_dot() { return row_dot; }

}  // namespace gb::kernels::cpu

#else

gb::kernels::cpu::RowDotFn gb::kernels::cpu::avx512_row_dot() { return nullptr; }

#endif
