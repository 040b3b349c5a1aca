// The hand-written tiled SGEMM, C = alpha * op(A) * op(B) + beta * C (row-major),
// the alternative to cuBLAS (GB_CUDA_GEMM=tiled). A block computes a 128 x 128
// tile of C with 256 threads, each an 8 x 8 sub-tile held in registers; the
// k axis advances 8 at a time through shared-memory tiles of op(A) and op(B)
// (register blocking after Volkov & Demmel 2008; the layout of siboehm's
// "How to optimize a CUDA matmul kernel"). Operands are loaders, so the same
// kernel also runs the implicit-GEMM convolutions (implicit_conv.cuh).
#pragma once

#include "kernels/cuda/cuda_backend.h"

GB_GPU_BEGIN

constexpr int kTileMN = 128, kTileK = 8, kMicro = 8, kGemmThreads = 256;
using Tile = float[kTileK][kTileMN];  // tile[k][i]: depth k, row i of the operand

// An operand of logical shape [rows, depth] (op(A) is [M, K]; op(B)^T is [N, K])
// stored densely: element (i, k) at p[i * ld + k] when k_contiguous, else at
// p[k * ld + i]. Each thread loads one float4 of the 8 x 128 tile, as one
// vector load when `vec4` (ld % 4 == 0, p 16-byte aligned) and inside the matrix.
struct DenseOperand {
    const float* p;
    int64_t rows, depth, ld, batch_stride;
    bool k_contiguous, vec4;

    __device__ void load_tile(Tile& tile, int64_t i0, int64_t k0, unsigned z) const {
        const int tid = threadIdx.x;
        const float* base = p + z * batch_stride;
        float v[4];
        if (k_contiguous) {
            const int i = tid / 2, kq = (tid % 2) * 4;
            const int64_t gi = i0 + i, gk = k0 + kq;
            if (vec4 && gi < rows && gk + 3 < depth) {
                const float4 q = *reinterpret_cast<const float4*>(base + gi * ld + gk);
                v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
            } else {
                for (int e = 0; e < 4; ++e) v[e] = gi < rows && gk + e < depth ? base[gi * ld + gk + e] : 0.f;
            }
            for (int e = 0; e < 4; ++e) tile[kq + e][i] = v[e];
        } else {
            const int k = tid / 32, iq = (tid % 32) * 4;
            const int64_t gk = k0 + k, gi = i0 + iq;
            if (vec4 && gk < depth && gi + 3 < rows) {
                const float4 q = *reinterpret_cast<const float4*>(base + gk * ld + gi);
                v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
            } else {
                for (int e = 0; e < 4; ++e) v[e] = gk < depth && gi + e < rows ? base[gk * ld + gi + e] : 0.f;
            }
            for (int e = 0; e < 4; ++e) tile[k][iq + e] = v[e];
        }
    }
};

inline DenseOperand dense_operand(const float* p, int64_t rows, int64_t depth, int64_t ld, bool k_contiguous,
                                  int64_t batch_stride = 0) {
    const bool aligned = reinterpret_cast<uintptr_t>(p) % 16 == 0 && ld % 4 == 0 && batch_stride % 4 == 0;
    return DenseOperand{p, rows, depth, ld, batch_stride, k_contiguous, aligned};
}

// C[z] (M x N, row stride ldc, batch z at C + z * c_batch) = alpha * A * B^T + beta * C[z]
// where A is [M, K] and B is [N, K] as loaders see them. beta = 0 never reads C.
template <typename OpA, typename OpB>
__global__ void tiled_gemm_kernel(int64_t M, int64_t N, int64_t K, float alpha, OpA a, OpB b, float beta, float* C,
                                  int64_t ldc, int64_t c_batch) {
    __shared__ Tile As;
    __shared__ Tile Bs;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kTileMN, n0 = static_cast<int64_t>(blockIdx.x) * kTileMN;
    const unsigned z = blockIdx.z;
    float acc[kMicro][kMicro] = {};
    for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
        a.load_tile(As, m0, k0, z);
        b.load_tile(Bs, n0, k0, z);
        __syncthreads();
        for (int k = 0; k < kTileK; ++k) {
            float ra[kMicro], rb[kMicro];
            for (int i = 0; i < kMicro; ++i) ra[i] = As[k][ty * kMicro + i];
            for (int j = 0; j < kMicro; ++j) rb[j] = Bs[k][tx * kMicro + j];
            for (int i = 0; i < kMicro; ++i)
                for (int j = 0; j < kMicro; ++j) acc[i][j] = fmaf(ra[i], rb[j], acc[i][j]);
        }
        __syncthreads();
    }
    float* Cz = C + z * c_batch;
    for (int i = 0; i < kMicro; ++i) {
        const int64_t m = m0 + ty * kMicro + i;
        if (m >= M) break;
        for (int j = 0; j < kMicro; ++j) {
            const int64_t n = n0 + tx * kMicro + j;
            if (n >= N) break;
            float& c = Cz[m * ldc + n];
            c = beta == 0.f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * c;
        }
    }
}

template <typename OpA, typename OpB>
void launch_tiled_gemm(int64_t M, int64_t N, int64_t K, float alpha, const OpA& a, const OpB& b, float beta, float* C,
                       int64_t ldc, int64_t batch = 1, int64_t c_batch = 0) {
    if (M <= 0 || N <= 0 || batch <= 0) return;
    auto tiles = [](int64_t n) { return static_cast<unsigned>((n + kTileMN - 1) / kTileMN); };
    const dim3 grid(tiles(N), tiles(M), static_cast<unsigned>(batch));
    launch(tiled_gemm_kernel<OpA, OpB>, grid, dim3(kGemmThreads), 0, M, N, K, alpha, a, b, beta, C, ldc, c_batch);
}

// Row-major GEMM through the tiled kernel (the backend contract's arguments).
inline void tiled_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                        int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    launch_tiled_gemm(M, N, K, alpha, dense_operand(A, M, K, lda, !trans_a), dense_operand(B, N, K, ldb, trans_b), beta,
                      C, ldc);
}

GB_GPU_END
