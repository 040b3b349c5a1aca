// Single-precision GEMM, C = epilogue(alpha * op(A) * op(B) + beta * C), row-major.
// Goto/van de Geijn blocking ("Anatomy of high-performance matrix
// multiplication", TOMS 2008; the loop order of BLIS): op(B) is packed into
// KC x NC blocks of NR-wide column panels, op(A) into MC x KC blocks of MR-high
// row panels, and a register-tiled micro-kernel multiplies one A panel by one
// B panel (the B panel stays in L1 while the A panels of the block stream from
// L2). The micro-kernel, its tile and the block sizes come from the instruction
// set chosen at run time (gemm_kernel.h). A C with very few columns is computed
// as C^T. Threads split C into whole tiles along M or N, whichever costs less
// (balance plus the operand every thread must pack).
#include "kernels/cpu/gemm.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/gemm_kernel.h"

namespace gb::kernels::cpu {

namespace {

const MicroKernel* kernel_of(GemmIsa isa) {
    switch (isa) {
        case GemmIsa::Avx512:
            return avx512_micro_kernel();
        case GemmIsa::Avx2:
            return avx2_micro_kernel();
        case GemmIsa::Scalar:
            return &scalar_micro_kernel();
    }
    return nullptr;
}

bool cpu_has(GemmIsa isa) {
#if defined(__x86_64__) || defined(__i386__)
    switch (isa) {
        case GemmIsa::Avx512:
            return __builtin_cpu_supports("avx512f");
        case GemmIsa::Avx2:
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        case GemmIsa::Scalar:
            return true;
    }
    return false;
#else
    return isa == GemmIsa::Scalar;
#endif
}

// The one $GB_GEMM_ISA names, else the best available. A name that is unknown
// or not runnable here is reported on stderr and ignored rather than thrown: the
// first GEMM may run inside a parallel region, where an exception cannot escape.
GemmIsa initial_isa() {
    GemmIsa best = GemmIsa::Scalar;
    for (GemmIsa isa : {GemmIsa::Avx2, GemmIsa::Avx512})
        if (gemm_isa_available(isa)) best = isa;
    const char* env = std::getenv("GB_GEMM_ISA");
    if (!env) return best;
    for (GemmIsa isa : {GemmIsa::Avx512, GemmIsa::Avx2, GemmIsa::Scalar})
        if (env == std::string(gemm_isa_name(isa)) && gemm_isa_available(isa)) return isa;
    std::fprintf(stderr, "glassbox: GB_GEMM_ISA=%s is not one of avx512, avx2, scalar that this CPU can run; using %s\n",
                 env, gemm_isa_name(best));
    return best;
}

std::atomic<GemmIsa>& current_isa() {
    static std::atomic<GemmIsa> isa{initial_isa()};
    return isa;
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// The finished element: epilogue(alpha * acc + beta * C), beta == 0 never reading C.
inline float finish(float acc, float alpha, float beta, float c, const GemmEpilogue& ep, int64_t i, int64_t j) {
    float v = alpha * acc;
    if (beta != 0.f) v += beta * c;
    if (ep.row_bias) v += ep.row_bias[i];
    if (ep.col_bias) v += ep.col_bias[j];
    return ep.relu && v < 0.f ? 0.f : v;
}

// C = epilogue(beta * C) when there is no product to add (K == 0 or alpha == 0).
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc, const GemmEpilogue& ep) {
    for (int64_t i = 0; i < M; ++i) {
        float* c = C + i * ldc;
        for (int64_t j = 0; j < N; ++j) c[j] = finish(0.f, 0.f, beta, beta == 0.f ? 0.f : c[j], ep, i, j);
    }
}

// A C of at most kFewRows rows with op(A) = A (a linear layer on a few images)
// needs no packing: packing op(B) would move more memory than the product
// reads. With op(B) = B^T every element is a dot product of two contiguous
// rows; with op(B) = B every row of C is a combination of B's rows, computed
// over column chunks that stay in L1. Threads split the columns of C.
constexpr int64_t kFewRows = 4;

void gemm_few_rows(bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmEpilogue& ep) {
    if (trans_b) {
        // Four columns of C at a time: four independent dot products per row of A
        // (one would wait on its own FMA latency every step). A last group of
        // fewer than four repeats its last column and drops the copies.
        constexpr int64_t G = 4;
        const int64_t groups = (N + G - 1) / G;
        parallel_for(0, groups, std::max<int64_t>(1, (int64_t{1} << 16) / (M * K * G)), [&](int64_t g0, int64_t g1) {
            for (int64_t grp = g0; grp < g1; ++grp) {
                const int64_t j0 = grp * G, n = std::min(G, N - j0);
                const float* b0 = B + j0 * ldb;
                const float* b1 = B + (j0 + std::min<int64_t>(1, n - 1)) * ldb;
                const float* b2 = B + (j0 + std::min<int64_t>(2, n - 1)) * ldb;
                const float* b3 = B + (j0 + std::min<int64_t>(3, n - 1)) * ldb;
                for (int64_t i = 0; i < M; ++i) {
                    const float* a = A + i * lda;
                    float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
                    for (int64_t k = 0; k < K; ++k) {
                        s0 += a[k] * b0[k];
                        s1 += a[k] * b1[k];
                        s2 += a[k] * b2[k];
                        s3 += a[k] * b3[k];
                    }
                    const float sums[G] = {s0, s1, s2, s3};
                    for (int64_t jj = 0; jj < n; ++jj) {
                        float* c = C + i * ldc + j0 + jj;
                        *c = finish(sums[jj], alpha, beta, beta == 0.f ? 0.f : *c, ep, i, j0 + jj);
                    }
                }
            }
        });
        return;
    }
    constexpr int64_t kChunk = 256;
    const int64_t chunks = (N + kChunk - 1) / kChunk;
    parallel_for(0, chunks, std::max<int64_t>(1, (int64_t{1} << 16) / (M * K * kChunk)), [&](int64_t c0, int64_t c1) {
        alignas(64) float acc[kFewRows][kChunk];
        for (int64_t chunk = c0; chunk < c1; ++chunk) {
            const int64_t j0 = chunk * kChunk, n = std::min(kChunk, N - j0);
            for (int64_t i = 0; i < M; ++i) std::fill(acc[i], acc[i] + n, 0.f);
            for (int64_t k = 0; k < K; ++k) {
                const float* b = B + k * ldb + j0;
                for (int64_t i = 0; i < M; ++i) {
                    const float a = A[i * lda + k];
                    float* r = acc[i];
#pragma omp simd
                    for (int64_t j = 0; j < n; ++j) r[j] += a * b[j];
                }
            }
            for (int64_t i = 0; i < M; ++i) {
                float* c = C + i * ldc + j0;
                for (int64_t j = 0; j < n; ++j) c[j] = finish(acc[i][j], alpha, beta, beta == 0.f ? 0.f : c[j], ep, i, j0 + j);
            }
        }
    });
}

// A C of at most kFewRows columns with op(A) = A (VGG's deepest convolutions
// on one image: 2x2 output maps against a 512 x 4608 weight): op(B) is copied
// transposed and zero-padded to kFewRows rows (tiny), then every row of A, read
// once and never packed, meets all of them in one pass with independent
// accumulators. Threads split the rows of C.
void gemm_few_cols(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                   const GemmOperand& b, float beta, float* C, int64_t ldc, const GemmEpilogue& ep) {
    float* bt = scratch(Scratch::GemmT, static_cast<size_t>(kFewRows * K));
    for (int64_t j = 0; j < kFewRows; ++j)
        for (int64_t k = 0; k < K; ++k) bt[j * K + k] = j < N ? *b.at(k, j) : 0.f;
    parallel_for(0, M, std::max<int64_t>(1, (int64_t{1} << 16) / (kFewRows * K)), [&](int64_t i0, int64_t i1) {
        constexpr int64_t L = 16;  // lanes of independent partial sums per column
        for (int64_t i = i0; i < i1; ++i) {
            const float* a = A + i * lda;
            alignas(64) float part[kFewRows][L] = {};
            int64_t k = 0;
            for (; k + L <= K; k += L)
                for (int64_t j = 0; j < kFewRows; ++j)
                    for (int64_t l = 0; l < L; ++l) part[j][l] += a[k + l] * bt[j * K + k + l];
            float sums[kFewRows];
            for (int64_t j = 0; j < kFewRows; ++j) {
                float t = 0.f;
                for (int64_t l = 0; l < L; ++l) t += part[j][l];
                for (int64_t kk = k; kk < K; ++kk) t += a[kk] * bt[j * K + kk];
                sums[j] = t;
            }
            float* c = C + i * ldc;
            for (int64_t j = 0; j < N; ++j) c[j] = finish(sums[j], alpha, beta, beta == 0.f ? 0.f : c[j], ep, i, j);
        }
    });
}

// C as the blocked loop sees it: element (i, j) at p[i * ld + j], or at
// p[j * ld + i] when the loop computes C^T (see TileStore).
struct Output {
    float* p;
    int64_t ld;
    bool trans;
    float* at(int64_t i, int64_t j) const { return trans ? p + j * ld + i : p + i * ld + j; }
};

// Equal depth blocks: K = 288 as 144 + 144 rather than 256 + 32, which would
// cost a whole extra pass over C for little work.
int64_t depth_block(const MicroKernel& uk, int64_t K) {
    const int64_t k_blocks = (K + uk.kc - 1) / uk.kc;
    return (K + k_blocks - 1) / k_blocks;
}

// op(A) packed ahead of time (gemm_packed_a), with the offset of this thread's
// first row (i0) in the whole matrix.
struct Ahead {
    const float* a = nullptr;
    int64_t mpad = 0, i0 = 0;
};

// The blocked loop on one thread, for C[M, N] with the epilogue's bias pointers
// already offset to C's first row and column.
void gemm_blocked(const MicroKernel& uk, const GemmOperand& a, const GemmOperand& b, const Ahead& pre,
                  int64_t M, int64_t N, int64_t K, float alpha, float beta, const Output& C,
                  const GemmEpilogue& ep) {
    const int64_t kc_max = depth_block(uk, K);
    float* bp = aligned_scratch(Scratch::GemmB, kc_max * round_up(std::min(N, uk.nc), uk.nr));
    float* pack_a = pre.a ? nullptr : aligned_scratch(Scratch::GemmA, kc_max * round_up(std::min(M, uk.mc), uk.mr));
    for (int64_t jc = 0; jc < N; jc += uk.nc) {
        const int64_t nc = std::min(uk.nc, N - jc);
        for (int64_t pc = 0; pc < K; pc += kc_max) {
            const int64_t kc = std::min(kc_max, K - pc);
            const bool last = pc + kc == K;
            uk.pack_b(GemmOperand{b.at(pc, jc), b.ld, b.trans}, kc, nc, bp);
            for (int64_t ic = 0; ic < M; ic += uk.mc) {
                const int64_t mc = std::min(uk.mc, M - ic);
                const float* ap = pack_a;
                if (pre.a)
                    ap = pre.a + pc * pre.mpad + (pre.i0 + ic) * kc;
                else
                    uk.pack_a(GemmOperand{a.at(ic, pc), a.ld, a.trans}, mc, kc, pack_a);
                for (int64_t jr = 0; jr < nc; jr += uk.nr) {
                    const float* bpanel = bp + jr * kc;
                    const float* col_bias = last && ep.col_bias ? ep.col_bias + jc + jr : nullptr;
                    for (int64_t ir = 0; ir < mc; ir += uk.mr) {
                        const TileStore s{alpha, pc == 0 ? beta : 1.f,
                                          last && ep.row_bias ? ep.row_bias + ic + ir : nullptr, col_bias,
                                          last && ep.relu, C.trans};
                        uk.run(kc, ap + ir * kc, bpanel, std::min(uk.mr, mc - ir), std::min(uk.nr, nc - jr),
                               C.at(ic + ir, jc + jr), C.ld, s);
                    }
                }
            }
        }
    }
}

}  // namespace

bool gemm_isa_available(GemmIsa isa) { return kernel_of(isa) != nullptr && cpu_has(isa); }

void set_gemm_isa(GemmIsa isa) {
    GB_CHECK(gemm_isa_available(isa), "set_gemm_isa(", gemm_isa_name(isa), "): this CPU or build cannot run it");
    current_isa().store(isa);
}

GemmIsa gemm_isa() { return current_isa().load(); }

double fma_peak_gflops(int threads) {
    GB_CHECK(threads >= 1, "fma_peak_gflops: threads must be at least 1, got ", threads);
    const auto loop = kernel_of(gemm_isa())->fma_loop;
    using Clock = std::chrono::steady_clock;
    // Iterations for about 50 ms on one thread, from a short calibration run.
    int64_t iters = 100000;
    for (;;) {
        const auto t0 = Clock::now();
        loop(iters);
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        if (s > 5e-3 || iters > (int64_t{1} << 40)) {
            iters = static_cast<int64_t>(static_cast<double>(iters) * 0.05 / std::max(s, 1e-9)) + 1;
            break;
        }
        iters *= 4;
    }
    double best = 0;
    for (int round = 0; round < 3; ++round) {
        std::vector<double> flops(static_cast<size_t>(threads));
        const auto t0 = Clock::now();
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { flops[static_cast<size_t>(t)] = loop(iters); });
        for (std::thread& th : pool) th.join();
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        double total = 0;
        for (double f : flops) total += f;
        best = std::max(best, total / s * 1e-9);
    }
    return best;
}

const char* gemm_isa_name(GemmIsa isa) {
    switch (isa) {
        case GemmIsa::Avx512:
            return "avx512";
        case GemmIsa::Avx2:
            return "avx2";
        case GemmIsa::Scalar:
            return "scalar";
    }
    return "?";
}

namespace {

// gemm_ex, or gemm_packed_a with `pre` holding the packed op(A).
void gemm_impl(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, const Ahead& pre, float beta, float* C, int64_t ldc,
               const GemmEpilogue& ep) {
    const bool ahead = pre.a != nullptr;
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.f) {
        parallel_for(0, M, std::max<int64_t>(1, kElementGrain / N), [&](int64_t i0, int64_t i1) {
            GemmEpilogue e = ep;
            if (e.row_bias) e.row_bias += i0;
            scale_c(i1 - i0, N, beta, C + i0 * ldc, ldc, e);
        });
        return;
    }
    if (M <= kFewRows && !trans_a && !ahead) {
        gemm_few_rows(trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
        return;
    }
    if (N <= kFewRows && !trans_a && !ahead) {
        gemm_few_cols(M, N, K, alpha, A, lda, GemmOperand{B, ldb, trans_b}, beta, C, ldc, ep);
        return;
    }
    const MicroKernel& uk = *kernel_of(gemm_isa());
    GemmOperand a{A, lda, trans_a}, b{B, ldb, trans_b};
    Output c{C, ldc, false};
    GemmEpilogue e = ep;
    // A C with fewer columns than half a register tile would leave most of each
    // tile's lanes idle: compute C^T = op(B)^T op(A)^T instead (the VGG-11
    // layers on 4x4 and 2x2 maps, the 10-way classifier).
    if (2 * N <= uk.nr && M > N && !ahead) {
        std::swap(M, N);
        a = GemmOperand{B, ldb, !trans_b};
        b = GemmOperand{A, lda, !trans_a};
        c.trans = true;
        std::swap(e.row_bias, e.col_bias);
    }
    // Split C into whole tiles along M or N. Cost of a split on T threads, in
    // flops: the largest share of tiles, plus the packing of the operand that
    // every thread packs in full (op(B) when splitting M, op(A) when splitting N),
    // counted at ~8 flops per packed float. Each share should carry at least
    // ~0.25 MFLOP, or the fork and join cost more than they save.
    const int64_t threads = num_threads();
    const int64_t tiles_m = (M + uk.mr - 1) / uk.mr, tiles_n = (N + uk.nr - 1) / uk.nr;
    const int64_t min_flops = int64_t{1} << 18;
    const int64_t max_shares = std::max<int64_t>(1, std::min<int64_t>(threads, 2 * M * N * K / min_flops));
    const int64_t tm = std::min(max_shares, tiles_m), tn = std::min(max_shares, tiles_n);
    const int64_t cost_m = (tiles_m + tm - 1) / tm * uk.mr * N * K * 2 + 8 * K * N;
    const int64_t cost_n = (tiles_n + tn - 1) / tn * uk.nr * M * K * 2 + (pre.a ? 0 : 8 * K * M);
    if (cost_m <= cost_n) {
        parallel_for(0, tiles_m, (tiles_m + tm - 1) / tm, [&](int64_t t0, int64_t t1) {
            const int64_t i0 = t0 * uk.mr, i1 = std::min(M, t1 * uk.mr);
            GemmEpilogue part = e;
            if (part.row_bias) part.row_bias += i0;
            Ahead part_pre = pre;
            part_pre.i0 += i0;
            gemm_blocked(uk, pre.a ? a : GemmOperand{a.at(i0, 0), a.ld, a.trans}, b, part_pre, i1 - i0, N, K, alpha,
                         beta, Output{c.at(i0, 0), c.ld, c.trans}, part);
        });
    } else {
        parallel_for(0, tiles_n, (tiles_n + tn - 1) / tn, [&](int64_t t0, int64_t t1) {
            const int64_t j0 = t0 * uk.nr, j1 = std::min(N, t1 * uk.nr);
            GemmEpilogue part = e;
            if (part.col_bias) part.col_bias += j0;
            gemm_blocked(uk, a, GemmOperand{b.at(0, j0), b.ld, b.trans}, pre, M, j1 - j0, K, alpha, beta,
                         Output{c.at(0, j0), c.ld, c.trans}, part);
        });
    }
}

}  // namespace

void gemm_ex(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
             const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmEpilogue& ep) {
    gemm_impl(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, Ahead{}, beta, C, ldc, ep);
}

bool gemm_packs(int64_t M, int64_t N) {
    return M > kFewRows && N > kFewRows && !(2 * N <= kernel_of(gemm_isa())->nr && M > N);
}

PackedA packed_a_layout(int64_t M, int64_t K) {
    const MicroKernel& uk = *kernel_of(gemm_isa());
    const int64_t pad = round_up(M, uk.mr);
    return PackedA{uk.mr, depth_block(uk, std::max<int64_t>(K, 1)), pad, K * pad};
}

int64_t gemm_panel_width() { return kernel_of(gemm_isa())->nr; }

void pack_a_ahead(bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda, float* out) {
    const MicroKernel& uk = *kernel_of(gemm_isa());
    const PackedA layout = packed_a_layout(M, K);
    const GemmOperand a{A, lda, trans_a};
    // One task per block of mc rows and kc depth, shared out over the threads.
    const int64_t row_blocks = (M + uk.mc - 1) / uk.mc, depth_blocks = (K + layout.kc - 1) / layout.kc;
    parallel_for(0, row_blocks * depth_blocks, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
            const int64_t ic = t % row_blocks * uk.mc, pc = t / row_blocks * layout.kc;
            const int64_t kc = std::min(layout.kc, K - pc);
            uk.pack_a(GemmOperand{a.at(ic, pc), a.ld, a.trans}, std::min(uk.mc, M - ic), kc,
                      out + pc * layout.pad + ic * kc);
        }
    });
}

void gemm_packed_a(int64_t M, int64_t N, int64_t K, float alpha, const float* packed_a, const float* B, int64_t ldb,
                   float beta, float* C, int64_t ldc, const GemmEpilogue& ep) {
    GB_CHECK(gemm_packs(M, N), "gemm_packed_a: a ", M, " x ", N, " C does not take the packed loop");
    Ahead pre;
    pre.a = packed_a;
    pre.mpad = packed_a_layout(M, K).pad;
    // op(A) is only read through `pre`; the operand passed for it is never touched.
    gemm_impl(false, false, M, N, K, alpha, packed_a, K, B, ldb, pre, beta, C, ldc, ep);
}

void gemm_rows_b(int64_t M, int64_t N, int64_t K, float alpha, const std::function<RowsOperands()>& operands,
                 float beta, float* C, int64_t ldc, const GemmEpilogue& ep) {
    GB_CHECK(gemm_packs(M, N) && K > 0, "gemm_rows_b: a ", M, " x ", N, " C of depth ", K,
             " does not take the packed loop");
    const MicroKernel& uk = *kernel_of(gemm_isa());
    const int64_t kc_max = depth_block(uk, K), mpad = round_up(M, uk.mr);
    const int64_t panels = (N + uk.nr - 1) / uk.nr, row_tiles = (M + uk.mr - 1) / uk.mr, units = panels * row_tiles;
    // Work units are (panel, row tile) pairs in panel-major order, each costing
    // its rows times its vectors of 16 columns (edge tiles run narrower
    // instantiations). Threads take contiguous runs of about equal cost, so a
    // 14x14 map (7 panels, the last 4 columns wide) splits evenly instead of 4
    // panels against 2.5; a panel shared by two runs is read (or filled) by
    // both. Shares of at least ~0.25 MFLOP, or the fork and join cost more than
    // they save.
    const auto cost = [&](int64_t u) {
        const int64_t jp = u / row_tiles, it = u % row_tiles;
        return std::min(uk.mr, M - it * uk.mr) * ((std::min(uk.nr, N - jp * uk.nr) + 15) / 16);
    };
    int64_t total = 0;
    for (int64_t u = 0; u < units; ++u) total += cost(u);
    const int64_t shares = std::max<int64_t>(
        1, std::min<int64_t>({num_threads(), units, (2 * M * N * K + (int64_t{1} << 18) - 1) >> 18}));
    std::vector<int64_t> bounds(static_cast<size_t>(shares + 1), units);
    bounds[0] = 0;
    for (int64_t u = 0, acc = 0, t = 1; u < units && t < shares; ++u) {
        acc += cost(u);
        if (acc * shares >= t * total) bounds[static_cast<size_t>(t++)] = u + 1;
    }
    parallel_for(0, shares, 1, [&](int64_t s0, int64_t s1) {
        const RowsOperands op = operands();
        const float* packed_a = op.packed_a;
        const float* const* rows = op.rows;
        const uint32_t* const* keep = op.keep;
        // Without run_rows: the panel filled from the rows, as pack_b would lay it out.
        float* panel = uk.run_rows ? nullptr : aligned_scratch(Scratch::GemmB, kc_max * uk.nr);
        const int64_t u0 = bounds[static_cast<size_t>(s0)], u1 = bounds[static_cast<size_t>(s1)];
        for (int64_t jp = u0 / row_tiles; jp * row_tiles < u1; ++jp) {
            const int64_t j0 = jp * uk.nr, n = std::min(uk.nr, N - j0);
            const int64_t i0 = std::max(u0 - jp * row_tiles, int64_t{0}) * uk.mr;
            const int64_t i1 = std::min(M, std::min(u1 - jp * row_tiles, row_tiles) * uk.mr);
            for (int64_t pc = 0; pc < K; pc += kc_max) {
                const int64_t kc = std::min(kc_max, K - pc);
                const bool last = pc + kc == K;
                if (panel)
                    for (int64_t k = 0; k < kc; ++k)
                        for (int64_t j = 0; j < uk.nr; ++j)
                            panel[k * uk.nr + j] = std::bit_cast<float>(
                                std::bit_cast<uint32_t>(rows[pc + k][j0 + j]) & keep[pc + k][j0 + j]);
                for (int64_t ir = i0; ir < i1; ir += uk.mr) {
                    const TileStore s{alpha, pc == 0 ? beta : 1.f, last && ep.row_bias ? ep.row_bias + ir : nullptr,
                                      last && ep.col_bias ? ep.col_bias + j0 : nullptr, last && ep.relu, false};
                    const float* a = packed_a + pc * mpad + ir * kc;
                    const int64_t m = std::min(uk.mr, M - ir);
                    if (panel)
                        uk.run(kc, a, panel, m, n, C + ir * ldc + j0, ldc, s);
                    else
                        uk.run_rows(kc, a, rows + pc, keep + pc, j0, m, n, C + ir * ldc + j0, ldc, s);
                }
            }
        }
    });
}

}  // namespace gb::kernels::cpu

namespace gb::kernels {

void CpuBackend::gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                      int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    cpu::gemm_ex(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, cpu::GemmEpilogue{});
}

}  // namespace gb::kernels
