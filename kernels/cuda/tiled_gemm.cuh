// The hand-written tiled SGEMM, C = alpha * op(A) * op(B) + beta * C (row-major),
// the alternative to cuBLAS (GB_CUDA_GEMM=tiled). A block computes a 128 x 128
// tile of C with 256 threads, each an 8 x 8 sub-tile held in registers; the
// k axis advances 8 at a time through shared-memory tiles of op(A) and op(B),
// filled with float4 loads from global memory where aligned and read as float4
// (register blocking after Volkov & Demmel 2008; the layout of siboehm's
// "How to optimize a CUDA matmul kernel"). Operands are loaders, so the same
// kernel also runs the implicit-GEMM convolutions (implicit_conv.cuh); a deep K
// with few output tiles can be split over blocks (split-K, summed in order).
#pragma once

#include "cuda_backend.h"

GB_GPU_BEGIN

constexpr int kTileMN = 128, kTileK = 8, kMicro = 8, kGemmThreads = 256;
using Tile = float[kTileK][kTileMN];  // tile[k][i]: depth k, row i of the operand

// An operand of logical shape [rows, depth] (op(A) is [M, K]; op(B)^T is [N, K])
// stored densely: element (i, k) at p[i * ld + k] when k_contiguous, else at
// p[k * ld + i]. Each thread loads one float4 of the 8 x 128 tile, as one
// vector load when `vec4` (ld % 4 == 0, p 16-byte aligned) and inside the matrix.
// load_tile reads depths below k_end only (the end of the block's share of K).
struct DenseOperand {
    const float* p;
    int64_t rows, ld, batch_stride;
    bool k_contiguous, vec4;

    __device__ void load_tile(Tile& tile, int64_t i0, int64_t k0, int64_t k_end, unsigned z) const {
        const int tid = threadIdx.x;
        const float* base = p + z * batch_stride;
        float v[4];
        if (k_contiguous) {
            const int i = tid / 2, kq = (tid % 2) * 4;
            const int64_t gi = i0 + i, gk = k0 + kq;
            if (vec4 && gi < rows && gk + 3 < k_end) {
                const float4 q = *reinterpret_cast<const float4*>(base + gi * ld + gk);
                v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
            } else {
                for (int e = 0; e < 4; ++e) v[e] = gi < rows && gk + e < k_end ? base[gi * ld + gk + e] : 0.f;
            }
            for (int e = 0; e < 4; ++e) tile[kq + e][i] = v[e];
        } else {
            const int k = tid / 32, iq = (tid % 32) * 4;
            const int64_t gk = k0 + k, gi = i0 + iq;
            if (vec4 && gk < k_end && gi + 3 < rows) {
                const float4 q = *reinterpret_cast<const float4*>(base + gk * ld + gi);
                v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
            } else {
                for (int e = 0; e < 4; ++e) v[e] = gk < k_end && gi + e < rows ? base[gk * ld + gi + e] : 0.f;
            }
            for (int e = 0; e < 4; ++e) tile[k][iq + e] = v[e];
        }
    }
};

inline DenseOperand dense_operand(const float* p, int64_t rows, int64_t ld, bool k_contiguous,
                                  int64_t batch_stride = 0) {
    const bool aligned = reinterpret_cast<uintptr_t>(p) % 16 == 0 && ld % 4 == 0 && batch_stride % 4 == 0;
    return DenseOperand{p, rows, ld, batch_stride, k_contiguous, aligned};
}

// Launch shape: blockIdx.z = batch * splits + split. Batch z of C starts at
// C + z * c_batch; with splits > 1 (split-K), split s covers depths
// [s * k_chunk, (s + 1) * k_chunk) and writes its partial product to the
// slice C + (batch * splits + s) * split_stride, to be summed afterwards.
struct GemmShape {
    int64_t M, N, K, ldc, c_batch = 0, k_chunk = 0, split_stride = 0;
    int splits = 1;
};

// C = alpha * A * B^T + beta * C where A is [M, K] and B is [N, K] as loaders
// see them. beta = 0 never reads C.
template <typename OpA, typename OpB>
__global__ void tiled_gemm_kernel(GemmShape sh, float alpha, OpA a, OpB b, float beta, float* C) {
    alignas(16) __shared__ Tile As;
    alignas(16) __shared__ Tile Bs;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kTileMN, n0 = static_cast<int64_t>(blockIdx.x) * kTileMN;
    const unsigned z = blockIdx.z / sh.splits, split = blockIdx.z % sh.splits;
    const int64_t k_begin = sh.splits > 1 ? split * sh.k_chunk : 0;
    const int64_t k_end = sh.splits > 1 && k_begin + sh.k_chunk < sh.K ? k_begin + sh.k_chunk : sh.K;
    float acc[kMicro][kMicro] = {};
    for (int64_t k0 = k_begin; k0 < k_end; k0 += kTileK) {
        a.load_tile(As, m0, k0, k_end, z);
        b.load_tile(Bs, n0, k0, k_end, z);
        __syncthreads();
        for (int k = 0; k < kTileK; ++k) {
            float ra[kMicro], rb[kMicro];  // two float4 reads from shared memory each
            for (int h = 0; h < kMicro; h += 4) {
                const float4 a4 = *reinterpret_cast<const float4*>(&As[k][ty * kMicro + h]);
                const float4 b4 = *reinterpret_cast<const float4*>(&Bs[k][tx * kMicro + h]);
                ra[h] = a4.x, ra[h + 1] = a4.y, ra[h + 2] = a4.z, ra[h + 3] = a4.w;
                rb[h] = b4.x, rb[h + 1] = b4.y, rb[h + 2] = b4.z, rb[h + 3] = b4.w;
            }
            for (int i = 0; i < kMicro; ++i)
                for (int j = 0; j < kMicro; ++j) acc[i][j] = fmaf(ra[i], rb[j], acc[i][j]);
        }
        __syncthreads();
    }
    float* Cz = sh.splits > 1 ? C + static_cast<int64_t>(blockIdx.z) * sh.split_stride : C + z * sh.c_batch;
    for (int i = 0; i < kMicro; ++i) {
        const int64_t m = m0 + ty * kMicro + i;
        if (m >= sh.M) break;
        for (int j = 0; j < kMicro; ++j) {
            const int64_t n = n0 + tx * kMicro + j;
            if (n >= sh.N) break;
            float& c = Cz[m * sh.ldc + n];
            c = beta == 0.f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * c;
        }
    }
}

template <typename OpA, typename OpB>
void launch_tiled_gemm(const GemmShape& sh, float alpha, const OpA& a, const OpB& b, float beta, float* C,
                       int64_t batch = 1) {
    if (sh.M <= 0 || sh.N <= 0 || batch <= 0) return;
    auto tiles = [](int64_t n) { return static_cast<unsigned>((n + kTileMN - 1) / kTileMN); };
    const dim3 grid(tiles(sh.N), tiles(sh.M), static_cast<unsigned>(batch * sh.splits));
    launch(tiled_gemm_kernel<OpA, OpB>, grid, dim3(kGemmThreads), 0, sh, alpha, a, b, beta, C);
}

// out[t] = sum over s < splits of parts[s * total + t], in order (deterministic).
__global__ void sum_splits_kernel(int64_t total, int splits, const float* parts, float* out) {
    const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
    for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
        float s = 0.f;
        for (int p = 0; p < splits; ++p) s += parts[p * total + t];
        out[t] = s;
    }
}

// Splits of K for an M x N product: enough blocks to fill a large GPU (about
// 256), each split at least kMinSplitDepth deep, at most kMaxSplits.
constexpr int64_t kMinSplitDepth = 512, kMaxSplits = 64, kTargetBlocks = 256;
inline int split_count(int64_t M, int64_t N, int64_t K) {
    const int64_t blocks = ((M + kTileMN - 1) / kTileMN) * ((N + kTileMN - 1) / kTileMN);
    int64_t s = (kTargetBlocks + blocks - 1) / blocks;
    if (s > K / kMinSplitDepth) s = K / kMinSplitDepth;
    if (s > kMaxSplits) s = kMaxSplits;
    return static_cast<int>(s < 1 ? 1 : s);
}

// C (M x N, row stride N) = A * B^T over a deep K, split over blocks when K is
// deep and M x N small; the partial products go to scratch memory on `device`
// and are summed in a fixed order, so the result does not depend on timing.
template <typename OpA, typename OpB>
void tiled_gemm_split_k(int64_t M, int64_t N, int64_t K, const OpA& a, const OpB& b, float* C, int device) {
    const int splits = split_count(M, N, K);
    if (splits == 1) {
        launch_tiled_gemm(GemmShape{M, N, K, N}, 1.f, a, b, 0.f, C);
        return;
    }
    const int64_t chunk = ((K + splits - 1) / splits + kTileK - 1) / kTileK * kTileK;
    DeviceBuffer<float> parts(splits * M * N, device);
    launch_tiled_gemm(GemmShape{M, N, K, N, 0, chunk, M * N, splits}, 1.f, a, b, 0.f, parts.get());
    launch(sum_splits_kernel, dim3(blocks_for(M * N)), dim3(kThreads), 0, M * N, splits, parts.get(), C);
}

// Row-major GEMM through the tiled kernel (the backend contract's arguments).
inline void tiled_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                        int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    launch_tiled_gemm(GemmShape{M, N, K, ldc}, alpha, dense_operand(A, M, lda, !trans_a),
                      dense_operand(B, N, ldb, trans_b), beta, C);
}

GB_GPU_END
