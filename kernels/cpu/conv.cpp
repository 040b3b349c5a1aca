// 2-D convolution (groups = 1) as im2col + GEMM (Chellapilla et al. 2006; the
// scheme of Caffe and PyTorch's slow_conv2d). Per image n, col[C*R*S, P*Q]
// holds the input taps of every output pixel, so
//   forward:          y[n] = w[K, CRS] * col   (+ bias, in the GEMM's epilogue)
//   backward-data:    dcol = w^T * dy[n], then col2im adds dcol into dx[n]
//   backward-weight:  dw   = sum_n dy[n] * col^T,  dbias = sum of dy over N, P, Q.
// 1x1 kernels with stride 1 and no padding use the input itself as col. With at
// least as many images as threads, images are spread over threads (the GEMM
// then runs inline in each); otherwise images run in turn with a threaded GEMM.
// Output maps of at most 32 pixels (64 for the weight gradient) take runs of
// images per GEMM instead (images_per_gemm), the GEMM and the layout copies
// threaded; maps that every window covers whole (2x2 under a 3x3 kernel) are,
// on a batch, one GEMM with a "whole-map" weight and no padding taps
// (conv_whole_map.h).
#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu/conv_whole_map.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/row_dot.h"

namespace gb::kernels {

namespace {

bool split_batch(const Conv2dGeom& g) { return num_threads() > 1 && g.N >= num_threads(); }

// Output columns q whose input column q*stride + off lies in [0, W).
struct QRange {
    int64_t lo, hi;
};
QRange valid_q(int64_t off, int64_t stride, int64_t W, int64_t Q) {
    const int64_t lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
    const int64_t hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / stride + 1;
    const int64_t l = std::min(lo, Q), h = std::min(hi, Q);
    return QRange{l, std::max(l, h)};
}

// Stride-1 convolutions whose output rows are as wide as the input's (Q == W:
// "same" padding, 2*pad_w == (S-1)*dil_w) admit flat rows: in col row
// (c, r, s), output pixel j = p*Q + q reads input pixel j + shift with
// shift = (r*dh - ph)*W + s*dw - pw, for the output rows p whose input row lies
// in [0, H). The flat shift wraps the taps that fall into the left or right
// padding (q + s*dw - pw outside [0, W)) onto a neighbouring input row; a mask
// per s selects 0 there. One contiguous masked copy or add per col row
// replaces P short ones.
// Zero entries of a keep mask past P*Q, so packed panels (up to one register
// tile of columns past P*Q) can read it without a bounds check.
constexpr int64_t kKeepSlack = 64;

struct FlatRow {
    int64_t shift;        // input pixel of output pixel j: j + shift
    int64_t j_lo, j_hi;   // output pixels whose input row is inside [0, H) and shifted pixel inside [0, H*W)
    const uint32_t* keep; // [P*Q + kKeepSlack]: all ones where q + s*dw - pw lies in [0, W), else 0 (a
                          // padding tap, or past P*Q)
};

bool flat_rows(const Conv2dGeom& g) { return g.stride_h == 1 && g.stride_w == 1 && g.Q == g.W; }

// The R*S flat rows of a geometry (null without flat_rows), built once per
// convolution call into grow-only storage of the calling thread and read by
// every thread that works on the call.
const FlatRow* flat_plan(const Conv2dGeom& g) {
    if (!flat_rows(g)) return nullptr;
    thread_local std::vector<FlatRow> rows;
    thread_local std::vector<uint32_t> keep;
    const int64_t PQ = g.P * g.Q;
    rows.resize(static_cast<size_t>(g.R * g.S));
    const int64_t stride = PQ + kKeepSlack;
    keep.assign(static_cast<size_t>(g.S * stride), 0);
    for (int64_t s = 0; s < g.S; ++s) {
        const int64_t w_off = s * g.dil_w - g.pad_w;
        uint32_t* k = keep.data() + s * stride;
        for (int64_t q = 0; q < g.Q; ++q) k[q] = q + w_off >= 0 && q + w_off < g.W ? ~uint32_t{0} : 0;
        for (int64_t p = 1; p < g.P; ++p) std::copy(k, k + g.Q, k + p * g.Q);
    }
    for (int64_t r = 0; r < g.R; ++r)
        for (int64_t s = 0; s < g.S; ++s) {
            FlatRow& f = rows[static_cast<size_t>(r * g.S + s)];
            const int64_t h_off = r * g.dil_h - g.pad_h;
            const int64_t p_lo = std::clamp<int64_t>(-h_off, 0, g.P);
            const int64_t p_hi = std::clamp<int64_t>(g.H - h_off, p_lo, g.P);
            f.shift = h_off * g.W + s * g.dil_w - g.pad_w;
            f.j_lo = std::clamp(-f.shift, p_lo * g.Q, p_hi * g.Q);
            f.j_hi = std::max(f.j_lo, std::min(p_hi * g.Q, g.H * g.W - f.shift));
            f.keep = keep.data() + s * stride;
        }
    return rows.data();
}

// dst[q] = src[q * stride + off] for q in [qr.lo, qr.hi), 0 for the rest of
// [0, Q): one output row of one im2col row, for the geometries without flat rows.
void gather_row(float* __restrict dst, const float* __restrict src, int64_t Q, QRange qr, int64_t off,
                int64_t stride) {
    std::fill(dst, dst + qr.lo, 0.f);
    for (int64_t q = qr.lo; q < qr.hi; ++q) dst[q] = src[q * stride + off];
    std::fill(dst + qr.hi, dst + Q, 0.f);
}

// Row (c, r, s) of one image's col: dst[p*Q + q] = x[c, p*sh - ph + r*dh, q*sw - pw + s*dw],
// 0 in the padding; `plane` is x[c] and `flat` is flat_plan(g).
void col_row(const Conv2dGeom& g, const FlatRow* flat, const float* plane, int64_t r, int64_t s, float* dst) {
    const int64_t PQ = g.P * g.Q;
    if (flat) {
        const FlatRow& f = flat[r * g.S + s];
        std::fill(dst, dst + f.j_lo, 0.f);
        cpu::copy_masked_n(f.j_hi - f.j_lo, plane + (f.j_lo + f.shift), f.keep + f.j_lo, dst + f.j_lo);
        std::fill(dst + f.j_hi, dst + PQ, 0.f);
        return;
    }
    const int64_t off_w = s * g.dil_w - g.pad_w;
    const QRange qr = valid_q(off_w, g.stride_w, g.W, g.Q);
    for (int64_t p = 0; p < g.P; ++p, dst += g.Q) {
        const int64_t h = p * g.stride_h - g.pad_h + r * g.dil_h;
        if (h < 0 || h >= g.H)
            std::fill(dst, dst + g.Q, 0.f);
        else
            gather_row(dst, plane + h * g.W, g.Q, qr, off_w, g.stride_w);
    }
}

// col[(c*R + r)*S + s, i*P*Q + p*Q + q] (col_row of image i), for `images`
// consecutive images; col rows are `ld` apart (ld = images * P*Q).
void im2col(const Conv2dGeom& g, const FlatRow* flat, const float* x, int64_t images, int64_t ld, float* col) {
    const int64_t RS = g.R * g.S, PQ = g.P * g.Q, CRS = g.C * RS;
    parallel_for(0, images * CRS, std::max<int64_t>(1, cpu::kElementGrain / PQ), [&](int64_t r0, int64_t r1) {
        for (int64_t task = r0; task < r1; ++task) {
            const int64_t img = task / CRS, row = task % CRS;
            const int64_t c = row / RS, r = (row / g.S) % g.R, s = row % g.S;
            col_row(g, flat, x + (img * g.C + c) * g.H * g.W, r, s, col + row * ld + img * PQ);
        }
    });
}

// One image's planes, each inside zero margins wide enough for every shifted
// read of a flat row over columns [0, pad) (pad: P*Q rounded up to whole
// panels), so output rows whose input row lies outside the map read zeros and no
// panel needs a bounds check. Plane c starts at base + c * stride.
struct MarginPlanes {
    const float* base;
    int64_t stride;
};

MarginPlanes margin_planes(const Conv2dGeom& g, const FlatRow* flat, const float* xn, int64_t pad) {
    const int64_t RS = g.R * g.S, HW = g.H * g.W, PQ = g.P * g.Q;
    GB_CHECK(pad - PQ <= kKeepSlack, "conv: panels wider than the keep masks' slack");
    int64_t before = 0, after = 0;
    for (int64_t rs = 0; rs < RS; ++rs) {
        before = std::max(before, -flat[rs].shift);
        after = std::max(after, pad + flat[rs].shift - HW);
    }
    const int64_t stride = before + HW + after;
    float* buf = cpu::scratch(cpu::Scratch::Col, static_cast<size_t>(g.C * stride));
    parallel_for(0, g.C, std::max<int64_t>(1, cpu::kElementGrain / stride), [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
            float* plane = buf + c * stride;
            std::fill(plane, plane + before, 0.f);
            std::copy(xn + c * HW, xn + (c + 1) * HW, plane + before);
            std::fill(plane + before + HW, plane + stride, 0.f);
        }
    });
    return MarginPlanes{buf + before, stride};
}

// op(w) packed for the GEMM once per call into the calling thread's storage
// `slot` (Weight, or WeightT for a call's second weight, such as w^T; read by
// every thread that works on the call).
const float* packed_weight(cpu::Scratch slot, bool trans, int64_t M, int64_t K, const float* w) {
    const cpu::PackedA layout = cpu::packed_a_layout(M, K);
    float* out = cpu::aligned_scratch(slot, layout.size);
    cpu::pack_a_ahead(trans, M, K, w, trans ? M : K, out);
    return out;
}

// The implicit GEMM's operands for one image with flat rows, in the calling
// thread's storage: the packed weight wp, and col's rows as the masked, shifted
// planes of a copy of the image inside zero margins (col is never written).
cpu::RowsOperands flat_operands(const Conv2dGeom& g, const FlatRow* flat, const float* xn, const float* wp) {
    const int64_t CRS = g.C * g.R * g.S, RS = g.R * g.S, PQ = g.P * g.Q, nr = cpu::gemm_panel_width();
    const MarginPlanes mp = margin_planes(g, flat, xn, (PQ + nr - 1) / nr * nr);
    thread_local std::vector<const float*> rows;
    thread_local std::vector<const uint32_t*> keep;
    rows.resize(static_cast<size_t>(CRS));
    keep.resize(static_cast<size_t>(CRS));
    for (int64_t c = 0, k = 0; c < g.C; ++c)
        for (int64_t rs = 0; rs < RS; ++rs, ++k) {
            rows[static_cast<size_t>(k)] = mp.base + c * mp.stride + flat[rs].shift;
            keep[static_cast<size_t>(k)] = flat[rs].keep;
        }
    return cpu::RowsOperands{wp, rows.data(), keep.data()};
}

// yn = epilogue(w * col(xn)) for one image on the packed GEMM path. With flat
// rows col is never written (gemm_rows_b on flat_operands): the weight comes
// packed ahead and shared (wp), or, with wp null, every thread of the threaded
// GEMM packs it for itself, as each copies the image, so no thread reads lines
// another core has just written (one image on several threads). Otherwise col
// is written whole and the GEMM packs it (wp required).
void forward_image(const Conv2dGeom& g, const FlatRow* flat, const float* xn, const float* w, const float* wp,
                   float* yn, const cpu::GemmEpilogue& ep) {
    const int64_t CRS = g.C * g.R * g.S, PQ = g.P * g.Q;
    if (flat) {
        cpu::gemm_rows_b(
            g.K, PQ, CRS, 1.f,
            [&] {
                return flat_operands(g, flat, xn, wp ? wp : packed_weight(cpu::Scratch::Weight, false, g.K, CRS, w));
            },
            0.f, yn, PQ, ep);
        return;
    }
    float* col = cpu::scratch(cpu::Scratch::Col, static_cast<size_t>(CRS * PQ));
    im2col(g, flat, xn, 1, PQ, col);
    cpu::gemm_packed_a(g.K, PQ, CRS, 1.f, wp, col, PQ, 0.f, yn, PQ, ep);
}

// dx[i][c, h, w] = sum of the col entries that im2col read from (i, c, h, w), for
// `images` consecutive images laid out in col as im2col writes them.
void col2im(const Conv2dGeom& g, const FlatRow* flat, const float* col, int64_t images, int64_t ld, float* dx) {
    const int64_t RS = g.R * g.S, PQ = g.P * g.Q, HW = g.H * g.W;
    parallel_for(0, images * g.C, std::max<int64_t>(1, cpu::kElementGrain / (RS * PQ)), [&](int64_t t0, int64_t t1) {
        for (int64_t task = t0; task < t1; ++task) {
            const int64_t img = task / g.C, c = task % g.C;
            float* plane = dx + (img * g.C + c) * HW;
            std::fill(plane, plane + HW, 0.f);
            for (int64_t rs = 0; rs < RS; ++rs) {
                const int64_t r = rs / g.S, s = rs % g.S;
                const float* src = col + (c * RS + rs) * ld + img * PQ;
                if (flat) {
                    const FlatRow& f = flat[rs];
                    cpu::add_masked_n(f.j_hi - f.j_lo, src + f.j_lo, f.keep + f.j_lo, plane + (f.j_lo + f.shift));
                    continue;
                }
                const int64_t off_w = s * g.dil_w - g.pad_w;
                const QRange qr = valid_q(off_w, g.stride_w, g.W, g.Q);
                for (int64_t p = 0; p < g.P; ++p, src += g.Q) {
                    const int64_t h = p * g.stride_h - g.pad_h + r * g.dil_h;
                    if (h < 0 || h >= g.H) continue;
                    float* dst = plane + h * g.W;
                    for (int64_t q = qr.lo; q < qr.hi; ++q) dst[q * g.stride_w + off_w] += src[q];
                }
            }
        }
    });
}

// Small output maps (the deep layers of VGG on small images) make skinny
// per-image GEMMs that reread the whole weight for a few columns each; there a
// run of images shares one GEMM with images * P*Q columns. Returns the run
// length: 1 (per image) for maps of more than `max_map` pixels, else enough
// images for about 512 columns, with col at most 8 MiB. The forward and
// backward-data take runs for maps of at most kRunMap pixels (an 8x8 map, two
// full panels per image, is faster per image on the weight packed ahead); the
// weight gradient up to kRunMapWeightGrad (row_dot's rows are too short there).
constexpr int64_t kRunMap = 32, kRunMapWeightGrad = 64;

int64_t images_per_gemm(const Conv2dGeom& g, int64_t max_map = kRunMap) {
    const int64_t PQ = g.P * g.Q, CRS = g.C * g.R * g.S;
    if (PQ > max_map || g.N < 2) return 1;
    const int64_t by_columns = std::max<int64_t>(1, 512 / PQ);
    const int64_t by_memory = std::max<int64_t>(1, (int64_t{8} << 20) / (4 * CRS * PQ));
    return std::min({g.N, by_columns, by_memory});
}

// Between the per-image layout [images][K][P*Q] and the GEMM layout [K][images * P*Q].
void relayout(bool to_gemm, int64_t images, int64_t K, int64_t PQ, const float* src, float* dst) {
    parallel_for(0, images * K, std::max<int64_t>(1, cpu::kElementGrain / PQ), [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
            const int64_t image_major = t * PQ, gemm_major = (t % K * images + t / K) * PQ;
            const int64_t from = to_gemm ? image_major : gemm_major, to = to_gemm ? gemm_major : image_major;
            std::copy(src + from, src + from + PQ, dst + to);
        }
    });
}

template <typename Fn>
void for_images(const Conv2dGeom& g, Fn&& fn) {
    if (split_batch(g)) {
        parallel_for(0, g.N, 1, [&](int64_t n0, int64_t n1) {
            for (int64_t n = n0; n < n1; ++n) fn(n);
        });
    } else {
        for (int64_t n = 0; n < g.N; ++n) fn(n);
    }
}

// row_dot where this CPU has a fast one (the GEMM runs its AVX-512 kernel), else null.
cpu::RowDotFn fast_row_dot() { return cpu::gemm_isa() == cpu::GemmIsa::Avx512 ? cpu::avx512_row_dot() : nullptr; }

// The weight gradient of a stride-1 convolution without im2col, for a run of
// images (n0, n0 + step, ... : nb of them). With each image's input zero-padded
// to Hp x Wp planes (plus a tail for the last shifted read) and dy laid out on
// the padded width (dy[k][p*Wp + q], 0 for q >= Q and past P*Wp), one channel's
// planes of the run back to back (xp) and likewise dy's (dyp), col row (c, r, s)
// of the run is the shifted view xp[c] + r*dh*Wp + s*dw of length nb * plane, so
//   dw[k, (c*R + r)*S + s] (+)= sum_t dyp[k][t] * xp[c][t + r*dh*Wp + s*dw],
// dot products of contiguous rows (row_dot), no transposed packing; a run makes
// the rows long enough (about kRowDotLen) that the 24 accumulators' reductions
// at the end of each tile cost little (a 14x14 map gives rows of 224). The
// positions where dy is 0 read the tail of the image's plane, the next image's
// plane or the zero gap after the channel, never another channel: a non-finite
// input can then leak into the taps of its own channel that do not read it.
// Null when this CPU has no fast row_dot.
cpu::RowDotFn direct_weight_grad(const Conv2dGeom& g) {
    if (g.stride_h != 1 || g.stride_w != 1 || g.col_is_input() || images_per_gemm(g, kRunMapWeightGrad) > 1)
        return nullptr;
    return fast_row_dot();
}

constexpr int64_t kRowDotLen = 2048;

// Padded plane of one image (the rows read by every tap) and images per row_dot call.
int64_t padded_plane(const Conv2dGeom& g) {
    return (g.H + 2 * g.pad_h) * (g.W + 2 * g.pad_w) + (g.S - 1) * g.dil_w;
}
int64_t row_dot_run(const Conv2dGeom& g) { return std::max<int64_t>(1, kRowDotLen / padded_plane(g)); }

void weight_grad_rows(const Conv2dGeom& g, cpu::RowDotFn row_dot, const float* x, const float* dy, int64_t n0,
                      int64_t step, int64_t nb, float beta, float* out) {
    const int64_t Wp = g.W + 2 * g.pad_w, PQ = g.P * g.Q, CRS = g.C * g.R * g.S, HW = g.H * g.W;
    const int64_t plane = padded_plane(g), len = g.P * Wp, span = nb * plane;
    // Past a channel's planes, the longest shifted view reads `gap` more floats: zeros.
    const int64_t gap = (g.R - 1) * g.dil_h * Wp + (g.S - 1) * g.dil_w, cstride = span + gap;
    float* xp = cpu::scratch(cpu::Scratch::Col, static_cast<size_t>(g.C * cstride));
    float* dyp = cpu::scratch(cpu::Scratch::Gather, static_cast<size_t>(g.K * span));
    // Row by row with plain loops: rows are short, where memmove/memset calls cost more than the copy.
    std::fill(xp, xp + g.C * cstride, 0.f);
    for (int64_t i = 0; i < nb; ++i) {
        const float* xn = x + (n0 + i * step) * g.C * HW;
        const float* dyn = dy + (n0 + i * step) * g.K * PQ;
        for (int64_t c = 0; c < g.C; ++c)
            for (int64_t h = 0; h < g.H; ++h) {
                const float* __restrict src = xn + (c * g.H + h) * g.W;
                float* __restrict d = xp + c * cstride + i * plane + (h + g.pad_h) * Wp + g.pad_w;
#pragma omp simd
                for (int64_t w = 0; w < g.W; ++w) d[w] = src[w];
            }
        for (int64_t k = 0; k < g.K; ++k) {
            float* __restrict d0 = dyp + k * span + i * plane;
            for (int64_t p = 0; p < g.P; ++p) {
                const float* __restrict src = dyn + k * PQ + p * g.Q;
                float* __restrict d = d0 + p * Wp;
#pragma omp simd
                for (int64_t q = 0; q < Wp; ++q) d[q] = q < g.Q ? src[q] : 0.f;
            }
            std::fill(d0 + len, d0 + plane, 0.f);
        }
    }
    thread_local std::vector<const float*> rows;
    rows.resize(static_cast<size_t>(CRS));
    for (int64_t c = 0; c < g.C; ++c)
        for (int64_t r = 0; r < g.R; ++r)
            for (int64_t s = 0; s < g.S; ++s)
                rows[static_cast<size_t>((c * g.R + r) * g.S + s)] = xp + c * cstride + r * g.dil_h * Wp + s * g.dil_w;
    row_dot(g.K, CRS, span, dyp, span, rows.data(), beta, out, CRS);
}

constexpr int64_t kTinyMap = 16;

// One image's forward on a map too small for the packed GEMM (at most kTinyMap
// output pixels, e.g. VGG-11's 4x4 and 2x2 maps at batch 1), where the GEMM would
// repack the whole weight for a few columns: y[k][j] = w[k] . col^T[j], dot
// products of each weight row, read once and never packed, with the
// transposed im2col (P*Q rows of C*R*S).
void tiny_map_forward(const Conv2dGeom& g, const FlatRow* flat, cpu::RowDotFn row_dot, const float* xn,
                      const float* w, const float* bias, bool relu, float* yn) {
    const int64_t RS = g.R * g.S, PQ = g.P * g.Q, CRS = g.C * RS;
    float* colt = cpu::scratch(cpu::Scratch::Col, static_cast<size_t>(PQ * CRS));
    float* row = cpu::scratch(cpu::Scratch::Row, static_cast<size_t>(PQ));
    for (int64_t k = 0; k < CRS; ++k) {
        col_row(g, flat, xn + k / RS * g.H * g.W, k / g.S % g.R, k % g.S, row);
        for (int64_t j = 0; j < PQ; ++j) colt[j * CRS + k] = row[j];
    }
    thread_local std::vector<const float*> rows;
    rows.resize(static_cast<size_t>(PQ));
    for (int64_t j = 0; j < PQ; ++j) rows[static_cast<size_t>(j)] = colt + j * CRS;
    row_dot(g.K, PQ, CRS, w, CRS, rows.data(), 0.f, yn, PQ);
    for (int64_t k = 0; k < g.K; ++k)
        for (int64_t j = 0; j < PQ; ++j) {
            float v = yn[k * PQ + j] + (bias ? bias[k] : 0.f);
            yn[k * PQ + j] = relu && v < 0.f ? 0.f : v;  // NaN stays NaN, as in the GEMM's epilogue
        }
}

void conv_forward(const Conv2dGeom& g, const float* x, const float* w, const float* bias, bool relu, float* y) {
    const int64_t CRS = g.C * g.R * g.S, PQ = g.P * g.Q;
    cpu::GemmEpilogue ep;
    ep.row_bias = bias;  // added as each tile of y is stored, then the ReLU when asked
    ep.relu = relu;
    if (cpu::whole_map(g)) return cpu::whole_map_forward(g, x, w, bias, relu, y);
    const FlatRow* flat = flat_plan(g);
    if (const int64_t run = images_per_gemm(g); run > 1) {
        const float* wp = nullptr;  // packed once for all runs (VGG-11's 4x4 layers: 9.4 MB)
        for (int64_t n0 = 0; n0 < g.N; n0 += run) {
            const int64_t nb = std::min(run, g.N - n0), cols = nb * PQ;
            float* col = cpu::scratch(cpu::Scratch::Col, static_cast<size_t>(CRS * cols));
            float* yb = cpu::scratch(cpu::Scratch::Gather, static_cast<size_t>(g.K * cols));
            im2col(g, flat, x + n0 * g.C * g.H * g.W, nb, cols, col);
            if (!cpu::gemm_packs(g.K, cols)) {
                cpu::gemm_ex(false, false, g.K, cols, CRS, 1.f, w, CRS, col, cols, 0.f, yb, cols, ep);
            } else {
                if (!wp) wp = packed_weight(cpu::Scratch::Weight, false, g.K, CRS, w);
                cpu::gemm_packed_a(g.K, cols, CRS, 1.f, wp, col, cols, 0.f, yb, cols, ep);
            }
            relayout(false, nb, g.K, PQ, yb, y + n0 * g.K * PQ);
        }
        return;
    }
    const bool direct = g.col_is_input();
    // The weight is packed once for all images (unless the GEMM takes an unpacked
    // path: tiny maps such as VGG's 2x2 at batch 1), except where images run in
    // turn on a threaded implicit GEMM: there each thread packs its own
    // (forward_image).
    const bool packed = cpu::gemm_packs(g.K, PQ);
    const bool own_weight = flat && !direct && !split_batch(g) && num_threads() > 1;
    const float* wp = packed && !own_weight ? packed_weight(cpu::Scratch::Weight, false, g.K, CRS, w) : nullptr;
    const cpu::RowDotFn row_dot = fast_row_dot();
    for_images(g, [&](int64_t n) {
        const float* xn = x + n * g.C * g.H * g.W;
        float* yn = y + n * g.K * PQ;
        if (!packed) {
            if (!direct && row_dot && PQ <= kTinyMap) return tiny_map_forward(g, flat, row_dot, xn, w, bias, relu, yn);
            const float* col = xn;
            if (!direct) {
                float* buf = cpu::scratch(cpu::Scratch::Col, static_cast<size_t>(CRS * PQ));
                im2col(g, flat, xn, 1, PQ, buf);
                col = buf;
            }
            return cpu::gemm_ex(false, false, g.K, PQ, CRS, 1.f, w, CRS, col, PQ, 0.f, yn, PQ, ep);
        }
        if (direct) return cpu::gemm_packed_a(g.K, PQ, CRS, 1.f, wp, xn, PQ, 0.f, yn, PQ, ep);
        forward_image(g, flat, xn, w, wp, yn, ep);
    });
}

}  // namespace

void CpuBackend::conv2d_forward(const Conv2dGeom& g, const float* x, const float* w, const float* bias, float* y) {
    conv_forward(g, x, w, bias, false, y);
}

void CpuBackend::conv2d_forward_relu(const Conv2dGeom& g, const float* x, const float* w, const float* bias,
                                     float* y) {
    conv_forward(g, x, w, bias, true, y);
}

namespace {

// The backward-data of a stride-1, undilated convolution is itself a forward
// convolution: dx = conv(dy, W~) with W~[c][k][r][s] = W[k][c][R-1-r][S-1-s] and
// padding R-1-p (output size P + R-1 - 2p = H). Taken on maps of at least
// kTransposedMap pixels, where it runs the implicit GEMM of the forward pass
// instead of a GEMM into a col buffer of C*R*S x P*Q and col2im (vgg-mini's
// 14x14 and 28x28 layers: saliency from a trace 5-7% faster than on the col
// path; 7x7 maps are faster on the col path).
constexpr int64_t kTransposedMap = 14 * 14;

bool backward_as_forward(const Conv2dGeom& g) {
    // Not for a few input channels (a first layer on grey or RGB images): that forward has as few output
    // rows, too few for the packed GEMM.
    return g.stride_h == 1 && g.stride_w == 1 && g.dil_h == 1 && g.dil_w == 1 && g.pad_h <= g.R - 1 &&
           g.pad_w <= g.S - 1 && g.P * g.Q >= kTransposedMap && !g.col_is_input() && cpu::gemm_packs(g.C, g.H * g.W);
}

Conv2dGeom transposed_geom(const Conv2dGeom& g) {
    return make_conv2d_geom(g.N, g.K, g.P, g.Q, g.C, g.R, g.S, 1, 1, g.R - 1 - g.pad_h, g.S - 1 - g.pad_w, 1, 1);
}

// W~ of backward_as_forward, in the calling thread's storage.
const float* flipped_weight(const Conv2dGeom& g, const float* w) {
    thread_local std::vector<float> wt;
    wt.resize(static_cast<size_t>(g.C * g.K * g.R * g.S));
    const int64_t RS = g.R * g.S;
    float* out = wt.data();  // this thread's buffer (thread_local names another in each worker)
    parallel_for(0, g.C, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c)
            for (int64_t k = 0; k < g.K; ++k) {
                const float* src = w + (k * g.C + c) * RS;
                float* dst = out + (c * g.K + k) * RS;
                for (int64_t i = 0; i < RS; ++i) dst[i] = src[RS - 1 - i];
            }
    });
    return out;
}

void backward_data_as_forward(const Conv2dGeom& g, const float* dy, const float* w, float* dx) {
    conv_forward(transposed_geom(g), dy, flipped_weight(g, w), nullptr, false, dx);
}

}  // namespace

void CpuBackend::conv2d_backward_data(const Conv2dGeom& g, const float* dy, const float* w, float* dx) {
    const int64_t CRS = g.C * g.R * g.S, PQ = g.P * g.Q;
    if (cpu::whole_map(g)) return cpu::whole_map_backward_data(g, dy, w, dx);
    if (backward_as_forward(g)) return backward_data_as_forward(g, dy, w, dx);
    const FlatRow* flat = flat_plan(g);
    if (const int64_t run = images_per_gemm(g); run > 1) {
        const float* wtp = nullptr;  // w^T, packed once for all runs
        for (int64_t n0 = 0; n0 < g.N; n0 += run) {
            const int64_t nb = std::min(run, g.N - n0), cols = nb * PQ;
            float* dyb = cpu::scratch(cpu::Scratch::Gather, static_cast<size_t>(g.K * cols));
            float* dcol = cpu::scratch(cpu::Scratch::Col, static_cast<size_t>(CRS * cols));
            relayout(true, nb, g.K, PQ, dy + n0 * g.K * PQ, dyb);
            if (!cpu::gemm_packs(CRS, cols)) {
                gemm(true, false, CRS, cols, g.K, 1.f, w, CRS, dyb, cols, 0.f, dcol, cols);
            } else {
                if (!wtp) wtp = packed_weight(cpu::Scratch::WeightT, true, CRS, g.K, w);
                cpu::gemm_packed_a(CRS, cols, g.K, 1.f, wtp, dyb, cols, 0.f, dcol, cols, cpu::GemmEpilogue{});
            }
            col2im(g, flat, dcol, nb, cols, dx + n0 * g.C * g.H * g.W);
        }
        return;
    }
    const bool direct = g.col_is_input();
    // w^T, once for all images
    const float* wp = cpu::gemm_packs(CRS, PQ) ? packed_weight(cpu::Scratch::WeightT, true, CRS, g.K, w) : nullptr;
    for_images(g, [&](int64_t n) {
        float* dxn = dx + n * g.C * g.H * g.W;
        float* dcol = direct ? dxn : cpu::scratch(cpu::Scratch::Col, static_cast<size_t>(CRS * PQ));
        if (wp)
            cpu::gemm_packed_a(CRS, PQ, g.K, 1.f, wp, dy + n * g.K * PQ, PQ, 0.f, dcol, PQ, cpu::GemmEpilogue{});
        else
            gemm(true, false, CRS, PQ, g.K, 1.f, w, CRS, dy + n * g.K * PQ, PQ, 0.f, dcol, PQ);
        if (!direct) col2im(g, flat, dcol, 1, PQ, dxn);
    });
}

// The four passes of an LRP term image by image, each image's z, s and col
// staying in cache between them: the forward GEMM (weight packed once, im2col
// into panels), lrp_divide, the backward-data (w^T packed once and col2im, or,
// where conv2d_backward_data runs it as a forward, that forward with W~ packed
// once) and the product with x. The same GEMM paths as conv2d_forward and
// conv2d_backward_data take, so the result is bit for bit theirs. Only for
// convolutions that take the per-image packed paths both ways. With z_known the
// forward is skipped; with z_keep it is written there.
bool CpuBackend::conv2d_lrp_term(const Conv2dGeom& g, const float* x, const float* w, const float* bias,
                                 const float* r, float eps, float* out, const float* z_known, float* z_keep) {
    const int64_t CRS = g.C * g.R * g.S, PQ = g.P * g.Q, CHW = g.C * g.H * g.W;
    if (images_per_gemm(g) > 1 || g.col_is_input() || !cpu::gemm_packs(g.K, PQ)) return false;
    const FlatRow* flat = flat_plan(g);
    // As a forward only where that forward has this one's flat rows ("same" padding).
    const bool as_forward = backward_as_forward(g);
    if (as_forward ? !flat || g.P != g.H : !cpu::gemm_packs(CRS, PQ))
        return false;
    const float* wp = z_known ? nullptr : packed_weight(cpu::Scratch::Weight, false, g.K, CRS, w);
    const float* wtp = as_forward ? packed_weight(cpu::Scratch::WeightT, false, g.C, g.K * g.R * g.S,
                                                  flipped_weight(g, w))
                                  : packed_weight(cpu::Scratch::WeightT, true, CRS, g.K, w);
    const Conv2dGeom t = transposed_geom(g);
    cpu::GemmEpilogue ep;
    ep.row_bias = bias;
    for_images(g, [&](int64_t n) {
        float* s = cpu::scratch(cpu::Scratch::Gather, static_cast<size_t>(g.K * PQ));
        const float* z = z_known ? z_known + n * g.K * PQ : s;
        if (!z_known) {
            float* zn = z_keep ? z_keep + n * g.K * PQ : s;
            forward_image(g, flat, x + n * CHW, w, wp, zn, ep);
            z = zn;
        }
        cpu::lrp_divide_n(g.K * PQ, eps, r + n * g.K * PQ, z, s);
        float* on = out + n * CHW;
        if (as_forward) {
            forward_image(t, flat, s, nullptr, wtp, on, cpu::GemmEpilogue{});
        } else {
            // The forward's col is used up.
            float* dcol = cpu::scratch(cpu::Scratch::Col, static_cast<size_t>(CRS * PQ));
            cpu::gemm_packed_a(CRS, PQ, g.K, 1.f, wtp, s, PQ, 0.f, dcol, PQ, cpu::GemmEpilogue{});
            col2im(g, flat, dcol, 1, PQ, on);
        }
        const float* xn = x + n * CHW;
        cpu::mul_n(CHW, on, xn, on);
    });
    return true;
}

void CpuBackend::conv2d_backward_weight(const Conv2dGeom& g, const float* x, const float* dy, float* dw,
                                        float* dbias) {
    const int64_t CRS = g.C * g.R * g.S, PQ = g.P * g.Q, KCRS = g.K * CRS;
    const bool direct = g.col_is_input();
    const cpu::RowDotFn row_dot = direct_weight_grad(g);
    const FlatRow* flat = row_dot ? nullptr : flat_plan(g);
    // dw (+)= sum of dy[n] [K, PQ] * col(n)^T, col(n) [CRS, PQ], over images n0, n0 + step, ... (count of them).
    auto accumulate = [&](int64_t n0, int64_t step, int64_t count, float beta, float* out) {
        if (row_dot) {
            const int64_t per = row_dot_run(g);
            for (int64_t i = 0; i < count; i += per)
                weight_grad_rows(g, row_dot, x, dy, n0 + i * step, step, std::min(per, count - i), i == 0 ? beta : 1.f,
                                 out);
            return;
        }
        for (int64_t i = 0; i < count; ++i) {
            const int64_t n = n0 + i * step;
            const float* col = x + n * g.C * g.H * g.W;
            if (!direct) {
                float* buf = cpu::scratch(cpu::Scratch::Col, static_cast<size_t>(CRS * PQ));
                im2col(g, flat, col, 1, PQ, buf);
                col = buf;
            }
            gemm(false, true, g.K, CRS, PQ, 1.f, dy + n * g.K * PQ, PQ, col, PQ, i == 0 ? beta : 1.f, out, CRS);
        }
    };
    const int64_t run = images_per_gemm(g, kRunMapWeightGrad);
    if (g.N == 0) {
        fill(KCRS, 0.f, dw);
    } else if (cpu::whole_map(g)) {
        cpu::whole_map_backward_weight(g, x, dy, dw);
    } else if (run > 1) {
        for (int64_t n0 = 0; n0 < g.N; n0 += run) {
            const int64_t nb = std::min(run, g.N - n0), cols = nb * PQ;
            float* col = cpu::scratch(cpu::Scratch::Col, static_cast<size_t>(CRS * cols));
            float* dyb = cpu::scratch(cpu::Scratch::Gather, static_cast<size_t>(g.K * cols));
            im2col(g, flat, x + n0 * g.C * g.H * g.W, nb, cols, col);
            relayout(true, nb, g.K, PQ, dy + n0 * g.K * PQ, dyb);
            gemm(false, true, g.K, CRS, cols, 1.f, dyb, cols, col, cols, n0 == 0 ? 0.f : 1.f, dw, CRS);
        }
    } else if (split_batch(g)) {
        // One partial dw per slot (slot s takes images s, s + slots, ...), then a fixed-order sum.
        const int64_t slots = std::min<int64_t>(num_threads(), g.N);
        float* partial = cpu::scratch(cpu::Scratch::Partial, static_cast<size_t>(slots * KCRS));
        parallel_for(0, slots, 1, [&](int64_t s0, int64_t s1) {
            for (int64_t s = s0; s < s1; ++s)
                accumulate(s, slots, (g.N - s + slots - 1) / slots, 0.f, partial + s * KCRS);
        });
        parallel_for(0, KCRS, cpu::kElementGrain, [&](int64_t i0, int64_t i1) {
            for (int64_t i = i0; i < i1; ++i) {
                float v = partial[i];
                for (int64_t s = 1; s < slots; ++s) v += partial[s * KCRS + i];
                dw[i] = v;
            }
        });
    } else {
        accumulate(0, 1, g.N, 0.f, dw);
    }
    if (dbias) bias_grad(g.N, g.K, PQ, dy, dbias);
}

}  // namespace gb::kernels
