// AVX-512F micro-kernel of the packed SGEMM (gemm.cpp): a 12 x 32 register tile
// held in 24 zmm accumulators; each step of k loads two vectors of the B panel
// and broadcasts 12 elements of the A panel (BLIS's broadcast-A scheme for
// row-major C). Edge tiles run the same code instantiated for fewer rows or
// vectors, with masked loads and stores of the last partial vector of C.
// run_rows is the same tile reading B's rows through pointers instead of a
// packed panel, each pair of vectors anded with a pair of mask vectors (an
// implicit GEMM's shifted, padded image rows; gemm_rows_b).
// CMake compiles this file with -mavx512f -mfma on x86-64; gemm.cpp calls it only
// when the CPU has AVX-512F.
#include "kernels/cpu/gemm_kernel.h"

#if defined(__AVX512F__) && defined(__FMA__)

#include <immintrin.h>

#include "kernels/cpu/gemm_kernel_parts.h"

namespace gb::kernels::cpu {

namespace {

constexpr int MR = 12;
constexpr int NV = 2;  // zmm vectors per tile row
constexpr int NR = 16 * NV;

// GCC 12 warns (-Wuninitialized) about the undefined pass-through operand inside
// _mm512_unpacklo_ps, _mm512_unpackhi_ps, _mm512_shuffle_f32x4 and _mm512_max_ps;
// the zero-masked forms with a full mask are the same instructions without it.
constexpr __mmask16 kAll = 0xFFFF;

// Lanes [0, n) of a 16-lane vector (all of them when n >= 16).
__mmask16 lanes(int64_t n) { return n >= 16 ? kAll : __mmask16((1u << n) - 1u); }

// Where a tile reads its B panel: packed (run), or row by row through pointers,
// each row anded with a mask (run_rows).
struct PackedB {
    const float* __restrict b;
    __m512 load(int64_t k, int j) const { return _mm512_load_ps(b + k * NR + 16 * j); }
};
struct RowsB {
    const float* const* rows;
    const uint32_t* const* keep;
    int64_t col;  // the panel's first column
    __m512 load(int64_t k, int j) const {
        return _mm512_castsi512_ps(_mm512_and_si512(_mm512_loadu_si512(rows[k] + col + 16 * j),
                                                    _mm512_loadu_si512(keep[k] + col + 16 * j)));
    }
};

template <int M, int V, typename B>
void tile(int64_t kc, const float* __restrict a, const B& b, int64_t n, float* __restrict c, int64_t ldc,
          const TileStore& s) {
    __m512 acc[M][V];
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
#pragma GCC unroll 4
        for (int j = 0; j < V; ++j) acc[i][j] = _mm512_setzero_ps();
        if (!s.transposed) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    }
    for (int64_t k = 0; k < kc; ++k, a += MR) {
        __m512 bv[V];
#pragma GCC unroll 4
        for (int j = 0; j < V; ++j) bv[j] = b.load(k, j);
#pragma GCC unroll 16
        for (int i = 0; i < M; ++i) {
            const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 4
            for (int j = 0; j < V; ++j) acc[i][j] = _mm512_fmadd_ps(ai, bv[j], acc[i][j]);
        }
    }
    if (s.transposed) {  // rare (C with few columns): spill and store element by element
        alignas(64) float t[M * V * 16];
        for (int i = 0; i < M; ++i)
            for (int j = 0; j < V; ++j) _mm512_store_ps(t + (i * V + j) * 16, acc[i][j]);
        return store_tile(t, V * 16, M, n, c, ldc, s);
    }
    const __m512 alpha = _mm512_set1_ps(s.alpha), beta = _mm512_set1_ps(s.beta), zero = _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
        float* ci = c + i * ldc;
#pragma GCC unroll 4
        for (int j = 0; j < V; ++j) {
            const __mmask16 m = j == V - 1 ? lanes(n - 16 * j) : kAll;
            __m512 v = _mm512_mul_ps(alpha, acc[i][j]);
            if (s.beta != 0.f) v = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(m, ci + 16 * j), v);
            if (s.row_bias) v = _mm512_add_ps(v, _mm512_set1_ps(s.row_bias[i]));
            if (s.col_bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, s.col_bias + 16 * j));
            if (s.relu) v = _mm512_maskz_max_ps(m, zero, v);  // NaN stays NaN, as in common/activation.h
            _mm512_mask_storeu_ps(ci + 16 * j, m, v);
        }
    }
}

// In place: r[c] becomes column c of the 16 x 16 block whose rows were r[0..15].
void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {  // lane block L of t[i], t[i + 1]: [a4L b4L a4L+1 b4L+1], [a4L+2 b4L+2 ...]
        t[i] = _mm512_maskz_unpacklo_ps(kAll, r[i], r[i + 1]);
        t[i + 1] = _mm512_maskz_unpackhi_ps(kAll, r[i], r[i + 1]);
    }
    for (int q = 0; q < 16; q += 4) {  // block L of r[q + e]: column 4L + e of rows q..q+3
        r[q] = _mm512_shuffle_ps(t[q], t[q + 2], 0x44);
        r[q + 1] = _mm512_shuffle_ps(t[q], t[q + 2], 0xEE);
        r[q + 2] = _mm512_shuffle_ps(t[q + 1], t[q + 3], 0x44);
        r[q + 3] = _mm512_shuffle_ps(t[q + 1], t[q + 3], 0xEE);
    }
    for (int e = 0; e < 4; ++e) {  // gather block L of r[e], r[4 + e], r[8 + e], r[12 + e] into column 4L + e
        const __m512 w0 = _mm512_maskz_shuffle_f32x4(kAll, r[e], r[4 + e], 0x44);
        const __m512 w1 = _mm512_maskz_shuffle_f32x4(kAll, r[e], r[4 + e], 0xEE);
        const __m512 w2 = _mm512_maskz_shuffle_f32x4(kAll, r[8 + e], r[12 + e], 0x44);
        const __m512 w3 = _mm512_maskz_shuffle_f32x4(kAll, r[8 + e], r[12 + e], 0xEE);
        t[e] = _mm512_maskz_shuffle_f32x4(kAll, w0, w2, 0x88);
        t[4 + e] = _mm512_maskz_shuffle_f32x4(kAll, w0, w2, 0xDD);
        t[8 + e] = _mm512_maskz_shuffle_f32x4(kAll, w1, w3, 0x88);
        t[12 + e] = _mm512_maskz_shuffle_f32x4(kAll, w1, w3, 0xDD);
    }
    for (int i = 0; i < 16; ++i) r[i] = t[i];
}

// out[k * width + i] = src[i * ld + k] for i < rows (<= 16), k < kc; lanes rows..15
// of each stored group are zero and the store covers `width_mask` lanes. This is
// the packing of an operand whose panel rows are contiguous along k (A not
// transposed, B transposed), 16 x 16 blocks at a time instead of element by element.
void pack_transposed(const float* src, int64_t ld, int64_t rows, int64_t kc, float* out, int64_t width,
                     __mmask16 width_mask) {
    __m512 r[16];
    for (int64_t k0 = 0; k0 < kc; k0 += 16) {
        const int64_t kn = kc - k0 < 16 ? kc - k0 : 16;
        const __mmask16 km = lanes(kn);
        for (int64_t i = 0; i < 16; ++i)
            r[i] = i < rows ? _mm512_maskz_loadu_ps(km, src + i * ld + k0) : _mm512_setzero_ps();
        transpose16(r);
        for (int64_t k = 0; k < kn; ++k) _mm512_mask_storeu_ps(out + (k0 + k) * width, width_mask, r[k]);
    }
}

void pack_a_avx512(const GemmOperand& a, int64_t mc, int64_t kc, float* out) {
    if (a.trans) return pack_a<MR>(a, mc, kc, out);
    for (int64_t i0 = 0; i0 < mc; i0 += MR, out += kc * MR)
        pack_transposed(a.at(i0, 0), a.ld, mc - i0 < MR ? mc - i0 : MR, kc, out, MR, lanes(MR));
}

void pack_b_avx512(const GemmOperand& b, int64_t kc, int64_t nc, float* out) {
    if (!b.trans) return pack_b<NR>(b, kc, nc, out);
    for (int64_t j0 = 0; j0 < nc; j0 += NR, out += kc * NR)
        for (int64_t g = 0; g < NR; g += 16) {
            const int64_t rows = nc - j0 - g;
            pack_transposed(b.at(0, j0 + g), b.ld, rows < 0 ? 0 : rows, kc, out + g, NR, lanes(16));
        }
}

// The instantiation for m rows (M >= m) and ceil(n / 16) vectors (V >= that).
template <int M, int V, typename B>
void dispatch(int64_t kc, const float* a, const B& b, int64_t m, int64_t n, float* c, int64_t ldc,
              const TileStore& s) {
    if constexpr (M > 1)
        if (m < M) return dispatch<M - 1, V>(kc, a, b, m, n, c, ldc, s);
    if constexpr (V > 1)
        if (n <= 16 * (V - 1)) return dispatch<M, V - 1>(kc, a, b, m, n, c, ldc, s);
    tile<M, V>(kc, a, b, n, c, ldc, s);
}

void run(int64_t kc, const float* a, const float* b, int64_t m, int64_t n, float* c, int64_t ldc,
         const TileStore& s) {
    dispatch<MR, NV>(kc, a, PackedB{b}, m, n, c, ldc, s);
}

void run_rows(int64_t kc, const float* a, const float* const* b_rows, const uint32_t* const* b_keep, int64_t col,
              int64_t m, int64_t n, float* c, int64_t ldc, const TileStore& s) {
    dispatch<MR, NV>(kc, a, RowsB{b_rows, b_keep, col}, m, n, c, ldc, s);
}

double fma_loop(int64_t iters) {
    return fma_chains<__m512, 16>(iters, [](float v) { return _mm512_set1_ps(v); },
                                 [](__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); });
}

constexpr MicroKernel kKernel{MR, NR, 384, 144, 1024, pack_a_avx512, pack_b_avx512, run, run_rows, fma_loop};

}  // namespace

const MicroKernel* avx512_micro_kernel() { return &kKernel; }

}  // namespace gb::kernels::cpu

#else

const gb::kernels::cpu::MicroKernel* gb::kernels::cpu::avx512_micro_kernel() { return nullptr; }

#endif
