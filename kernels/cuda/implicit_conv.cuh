// Implicit-GEMM convolution (GB_CUDA_CONV=implicit): the tiled GEMM kernel of
// tiled_gemm.cuh with operands gathered straight from the tensors, so no
// im2col buffer is written (the scheme of cuDNN's IMPLICIT_GEMM, Chetlur et al.
// 2014). As GEMMs, with CRS = C*R*S and the image n as the batch index z:
//   forward          y[n] [K, PQ]  = w [K, CRS]            x (x taps [PQ, CRS])^T
//   backward-data    dx[n] [C, HW] = (w as [C, KRS])        x (dy taps [HW, KRS])^T
//   backward-weight  dw   [K, CRS] = (dy as [K, N*PQ])      x (x taps [CRS, N*PQ])^T
// A tap outside the image (padding) or between strides reads 0. Backward-weight
// splits its deep N*P*Q reduction over blocks (split-K) when K x CRS is small.
#pragma once

#include "tiled_gemm.cuh"

GB_GPU_BEGIN

// An operand whose element (i, k) of image z is Src::at(i, k, z); each thread
// gathers 4 of the 8 x 128 tile's elements (consecutive threads, consecutive i).
template <typename Src>
struct GatherOperand {
    Src src;
    int64_t rows;

    __device__ void load_tile(Tile& tile, int64_t i0, int64_t k0, int64_t k_end, unsigned z) const {
        for (int e = 0; e < kTileK * kTileMN / kGemmThreads; ++e) {
            const int idx = threadIdx.x + e * kGemmThreads, k = idx / kTileMN, i = idx % kTileMN;
            const int64_t gi = i0 + i, gk = k0 + k;
            tile[k][i] = gi < rows && gk < k_end ? src.at(gi, gk, z) : 0.f;
        }
    }
};

// x[n, c, h, w] for output pixel pq = p*Q + q and tap crs = (c*R + r)*S + s.
__device__ inline float x_tap(const Conv2dGeom& g, const float* x, int64_t n, int64_t pq, int64_t crs) {
    const int64_t p = pq / g.Q, q = pq % g.Q, s = crs % g.S, r = (crs / g.S) % g.R, c = crs / (g.R * g.S);
    const int64_t h = p * g.stride_h - g.pad_h + r * g.dil_h, w = q * g.stride_w - g.pad_w + s * g.dil_w;
    return h >= 0 && h < g.H && w >= 0 && w < g.W ? x[((n * g.C + c) * g.H + h) * g.W + w] : 0.f;
}

struct ForwardXTaps {  // [PQ, CRS] of image z
    Conv2dGeom g;
    const float* x;
    __device__ float at(int64_t pq, int64_t crs, unsigned z) const { return x_tap(g, x, z, pq, crs); }
};

struct WeightByChannel {  // [C, KRS]: w[k, c, r, s]
    Conv2dGeom g;
    const float* w;
    __device__ float at(int64_t c, int64_t krs, unsigned) const {
        const int64_t RS = g.R * g.S;
        return w[((krs / RS) * g.C + c) * RS + krs % RS];
    }
};

struct DyTaps {  // [HW, KRS] of image z: dy[n, k, p, q] where input pixel (h, w) meets tap (r, s)
    Conv2dGeom g;
    const float* dy;
    __device__ float at(int64_t hw, int64_t krs, unsigned z) const {
        const int64_t RS = g.R * g.S, k = krs / RS, r = (krs % RS) / g.S, s = krs % g.S;
        const int64_t hh = hw / g.W + g.pad_h - r * g.dil_h, ww = hw % g.W + g.pad_w - s * g.dil_w;
        if (hh < 0 || ww < 0 || hh % g.stride_h != 0 || ww % g.stride_w != 0) return 0.f;
        const int64_t p = hh / g.stride_h, q = ww / g.stride_w;
        return p < g.P && q < g.Q ? dy[((static_cast<int64_t>(z) * g.K + k) * g.P + p) * g.Q + q] : 0.f;
    }
};

struct DyByOutput {  // [K, N*PQ]: dy[n, k, pq]
    Conv2dGeom g;
    const float* dy;
    __device__ float at(int64_t k, int64_t npq, unsigned) const {
        const int64_t PQ = g.P * g.Q;
        return dy[((npq / PQ) * g.K + k) * PQ + npq % PQ];
    }
};

struct WeightXTaps {  // [CRS, N*PQ]
    Conv2dGeom g;
    const float* x;
    __device__ float at(int64_t crs, int64_t npq, unsigned) const {
        const int64_t PQ = g.P * g.Q;
        return x_tap(g, x, npq / PQ, npq % PQ, crs);
    }
};

template <typename Src>
GatherOperand<Src> gather(Src src, int64_t rows) {
    return GatherOperand<Src>{src, rows};
}

inline void implicit_conv2d_forward(const Conv2dGeom& g, const float* x, const float* w, float* y) {
    const int64_t CRS = g.C * g.R * g.S, PQ = g.P * g.Q;
    launch_tiled_gemm(GemmShape{g.K, PQ, CRS, PQ, g.K * PQ}, 1.f, dense_operand(w, g.K, CRS, true),
                      gather(ForwardXTaps{g, x}, PQ), 0.f, y, g.N);
}

inline void implicit_conv2d_backward_data(const Conv2dGeom& g, const float* dy, const float* w, float* dx) {
    const int64_t KRS = g.K * g.R * g.S, HW = g.H * g.W;
    launch_tiled_gemm(GemmShape{g.C, HW, KRS, HW, g.C * HW}, 1.f, gather(WeightByChannel{g, w}, g.C),
                      gather(DyTaps{g, dy}, HW), 0.f, dx, g.N);
}

// K x CRS outputs over a reduction of N*P*Q: split-K (tiled_gemm.cuh) keeps a large GPU busy.
inline void implicit_conv2d_backward_weight(const Conv2dGeom& g, const float* x, const float* dy, float* dw,
                                            int device) {
    const int64_t CRS = g.C * g.R * g.S, NPQ = g.N * g.P * g.Q;
    tiled_gemm_split_k(g.K, CRS, NPQ, gather(DyByOutput{g, dy}, g.K), gather(WeightXTaps{g, x}, CRS), dw, device);
}

GB_GPU_END
