// Single-precision GEMM, C = alpha * op(A) * op(B) + beta * C, row-major.
// Goto/van de Geijn blocking ("Anatomy of high-performance matrix
// multiplication", TOMS 2008): op(B) is packed into KC x NC blocks of NR-wide
// column panels, op(A) into MC x KC blocks of MR-high row panels, and an MR x NR
// register tile is accumulated by a branch-free inner loop the compiler
// vectorises. Threads split the rows of C (or its columns when M is small);
// each runs the blocked loop on its part with its own packing buffers.
#include <algorithm>

#include "core/parallel.h"
#include "kernels/cpu/cpu_backend.h"

namespace gb::kernels {

namespace {

constexpr int64_t MR = 6;     // register tile rows
constexpr int64_t NR = 8;     // register tile columns: two SSE / one AVX vector
constexpr int64_t KC = 256;   // depth of a packed block (A panel + B panel stay in L1/L2)
constexpr int64_t MC = 120;   // rows of a packed A block (multiple of MR)
constexpr int64_t NC = 1024;  // columns of a packed B block (multiple of NR)

struct Operand {
    const float* p;
    int64_t ld;
    bool trans;
    // Element (r, c) of op(X).
    const float* at(int64_t r, int64_t c) const { return trans ? p + c * ld + r : p + r * ld + c; }
};

// Packs rows [0, mc) x depth [0, kc) of op(A) into MR-row panels, k-major
// within a panel, zero-filling the rows past mc.
void pack_a(const Operand& a, int64_t mc, int64_t kc, float* __restrict out) {
    for (int64_t i0 = 0; i0 < mc; i0 += MR) {
        const int64_t mr = std::min(MR, mc - i0);
        if (a.trans) {
            for (int64_t k = 0; k < kc; ++k) {
                const float* src = a.at(i0, k);
                for (int64_t i = 0; i < mr; ++i) out[k * MR + i] = src[i];
                for (int64_t i = mr; i < MR; ++i) out[k * MR + i] = 0.f;
            }
        } else {
            for (int64_t i = 0; i < mr; ++i) {
                const float* src = a.at(i0 + i, 0);
                for (int64_t k = 0; k < kc; ++k) out[k * MR + i] = src[k];
            }
            for (int64_t i = mr; i < MR; ++i)
                for (int64_t k = 0; k < kc; ++k) out[k * MR + i] = 0.f;
        }
        out += kc * MR;
    }
}

// Packs depth [0, kc) x columns [0, nc) of op(B) into NR-column panels, k-major
// within a panel, zero-filling the columns past nc.
void pack_b(const Operand& b, int64_t kc, int64_t nc, float* __restrict out) {
    for (int64_t j0 = 0; j0 < nc; j0 += NR) {
        const int64_t nr = std::min(NR, nc - j0);
        if (b.trans) {
            for (int64_t j = 0; j < nr; ++j) {
                const float* src = b.at(0, j0 + j);
                for (int64_t k = 0; k < kc; ++k) out[k * NR + j] = src[k];
            }
            for (int64_t j = nr; j < NR; ++j)
                for (int64_t k = 0; k < kc; ++k) out[k * NR + j] = 0.f;
        } else {
            for (int64_t k = 0; k < kc; ++k) {
                const float* src = b.at(k, j0);
                for (int64_t j = 0; j < nr; ++j) out[k * NR + j] = src[j];
                for (int64_t j = nr; j < NR; ++j) out[k * NR + j] = 0.f;
            }
        }
        out += kc * NR;
    }
}

// acc[MR][NR] = sum_k a[k][:] (outer) b[k][:] over one packed panel pair.
inline void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b,
                         float* __restrict acc) {
    float c[MR][NR] = {};
    for (int64_t k = 0; k < kc; ++k) {
        for (int64_t i = 0; i < MR; ++i) {
            const float ai = a[i];
            for (int64_t j = 0; j < NR; ++j) c[i][j] += ai * b[j];
        }
        a += MR;
        b += NR;
    }
    for (int64_t i = 0; i < MR; ++i)
        for (int64_t j = 0; j < NR; ++j) acc[i * NR + j] = c[i][j];
}

// C tile (mr x nr) = alpha * acc + beta * C; beta == 0 never reads C.
inline void store_tile(const float* __restrict acc, int64_t mr, int64_t nr, float alpha, float beta,
                       float* __restrict C, int64_t ldc) {
    for (int64_t i = 0; i < mr; ++i) {
        float* __restrict c = C + i * ldc;
        const float* __restrict t = acc + i * NR;
        if (beta == 0.f) {
            for (int64_t j = 0; j < nr; ++j) c[j] = alpha * t[j];
        } else if (beta == 1.f) {
            for (int64_t j = 0; j < nr; ++j) c[j] += alpha * t[j];
        } else {
            for (int64_t j = 0; j < nr; ++j) c[j] = alpha * t[j] + beta * c[j];
        }
    }
}

// C = beta * C for K == 0 (beta == 0 writes zeros without reading C).
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
    for (int64_t i = 0; i < M; ++i) {
        float* c = C + i * ldc;
        if (beta == 0.f)
            std::fill(c, c + N, 0.f);
        else if (beta != 1.f)
            for (int64_t j = 0; j < N; ++j) c[j] *= beta;
    }
}

// The blocked loop on one thread.
void gemm_blocked(const Operand& a, const Operand& b, int64_t M, int64_t N, int64_t K, float alpha, float beta,
                  float* C, int64_t ldc) {
    const int64_t kc_max = std::min(K, KC);
    float* bp = cpu::scratch(cpu::Scratch::GemmB, static_cast<size_t>(kc_max * ((std::min(N, NC) + NR - 1) / NR) * NR));
    float* ap = cpu::scratch(cpu::Scratch::GemmA, static_cast<size_t>(kc_max * ((std::min(M, MC) + MR - 1) / MR) * MR));
    alignas(64) float acc[MR * NR];
    for (int64_t jc = 0; jc < N; jc += NC) {
        const int64_t nc = std::min(NC, N - jc);
        for (int64_t pc = 0; pc < K; pc += KC) {
            const int64_t kc = std::min(KC, K - pc);
            const float beta_k = pc == 0 ? beta : 1.f;
            pack_b(Operand{b.at(pc, jc), b.ld, b.trans}, kc, nc, bp);
            for (int64_t ic = 0; ic < M; ic += MC) {
                const int64_t mc = std::min(MC, M - ic);
                pack_a(Operand{a.at(ic, pc), a.ld, a.trans}, mc, kc, ap);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    const float* bpanel = bp + (jr / NR) * kc * NR;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        micro_kernel(kc, ap + (ir / MR) * kc * MR, bpanel, acc);
                        store_tile(acc, std::min(MR, mc - ir), std::min(NR, nc - jr), alpha, beta_k,
                                   C + (ic + ir) * ldc + jc + jr, ldc);
                    }
                }
            }
        }
    }
}

}  // namespace

void CpuBackend::gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                      int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.f) {
        parallel_for(0, M, std::max<int64_t>(1, cpu::kElementGrain / N),
                     [&](int64_t i0, int64_t i1) { scale_c(i1 - i0, N, beta, C + i0 * ldc, ldc); });
        return;
    }
    const Operand a{A, lda, trans_a}, b{B, ldb, trans_b};
    // Each chunk should carry at least ~1 MFLOP so threading pays for itself.
    const int64_t min_flops = int64_t{1} << 20;
    const int64_t threads = num_threads();
    if (M >= N || M >= threads * MC) {
        const int64_t blocks = (M + MR - 1) / MR;
        const int64_t grain = std::max<int64_t>(1, min_flops / (2 * MR * N * K + 1));
        parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) {
            const int64_t i0 = b0 * MR, i1 = std::min(M, b1 * MR);
            gemm_blocked(Operand{a.at(i0, 0), a.ld, a.trans}, b, i1 - i0, N, K, alpha, beta, C + i0 * ldc, ldc);
        });
    } else {
        const int64_t blocks = (N + NR - 1) / NR;
        const int64_t grain = std::max<int64_t>(1, min_flops / (2 * NR * M * K + 1));
        parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) {
            const int64_t j0 = b0 * NR, j1 = std::min(N, b1 * NR);
            gemm_blocked(a, Operand{b.at(0, j0), b.ld, b.trans}, M, j1 - j0, K, alpha, beta, C + j0, ldc);
        });
    }
}

}  // namespace gb::kernels
