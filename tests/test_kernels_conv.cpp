// CPU backend: convolution (forward, fused ReLU, both backwards, the fused LRP
// term) against naive double-precision loops written here, on every GEMM
// instruction set, and the same results on one thread and on several.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "core/rng.h"
#include "kernels/backend.h"
#include "kernels/cpu/gemm.h"
#include "kernels/geometry.h"
#include "kernel_reference.h"

using namespace gb;
using namespace gb::kernels;
using gbtest::check_sums;
using gbtest::for_each_gemm_isa;
using gbtest::uniform;

namespace {

struct ConvRef {
    std::vector<double> value, mag;
};

// Input coordinate of output p, kernel tap r; false in the padding.
bool tap(int64_t p, int64_t r, int64_t stride, int64_t pad, int64_t dil, int64_t in, int64_t& h) {
    h = p * stride - pad + r * dil;
    return h >= 0 && h < in;
}

// y[n,k,p,q] = bias[k] + sum_{c,r,s} x[n,c,h,w] * w[k,c,r,s] (PyTorch Conv2d).
ConvRef naive_conv_forward(const Conv2dGeom& g, const std::vector<float>& x, const std::vector<float>& w,
                           const std::vector<float>& bias) {
    ConvRef r{std::vector<double>(g.y_numel()), std::vector<double>(g.y_numel())};
    for (int64_t n = 0; n < g.N; ++n)
        for (int64_t k = 0; k < g.K; ++k)
            for (int64_t p = 0; p < g.P; ++p)
                for (int64_t q = 0; q < g.Q; ++q) {
                    double s = bias[k], m = std::fabs(bias[k]);
                    for (int64_t c = 0; c < g.C; ++c)
                        for (int64_t rr = 0; rr < g.R; ++rr)
                            for (int64_t ss = 0; ss < g.S; ++ss) {
                                int64_t h, ww;
                                if (!tap(p, rr, g.stride_h, g.pad_h, g.dil_h, g.H, h) ||
                                    !tap(q, ss, g.stride_w, g.pad_w, g.dil_w, g.W, ww))
                                    continue;
                                const double v = static_cast<double>(x[((n * g.C + c) * g.H + h) * g.W + ww]) *
                                                 w[((k * g.C + c) * g.R + rr) * g.S + ss];
                                s += v;
                                m += std::fabs(v);
                            }
                    const int64_t i = ((n * g.K + k) * g.P + p) * g.Q + q;
                    r.value[i] = s;
                    r.mag[i] = m;
                }
    return r;
}

// dx and dw by scattering every product of the forward sum.
void naive_conv_backward(const Conv2dGeom& g, const std::vector<float>& x, const std::vector<float>& w,
                         const std::vector<float>& dy, ConvRef& dx, ConvRef& dw, ConvRef& db) {
    dx = ConvRef{std::vector<double>(g.x_numel()), std::vector<double>(g.x_numel())};
    dw = ConvRef{std::vector<double>(g.w_numel()), std::vector<double>(g.w_numel())};
    db = ConvRef{std::vector<double>(g.K), std::vector<double>(g.K)};
    for (int64_t n = 0; n < g.N; ++n)
        for (int64_t k = 0; k < g.K; ++k)
            for (int64_t p = 0; p < g.P; ++p)
                for (int64_t q = 0; q < g.Q; ++q) {
                    const double d = dy[((n * g.K + k) * g.P + p) * g.Q + q];
                    db.value[k] += d;
                    db.mag[k] += std::fabs(d);
                    for (int64_t c = 0; c < g.C; ++c)
                        for (int64_t rr = 0; rr < g.R; ++rr)
                            for (int64_t ss = 0; ss < g.S; ++ss) {
                                int64_t h, ww;
                                if (!tap(p, rr, g.stride_h, g.pad_h, g.dil_h, g.H, h) ||
                                    !tap(q, ss, g.stride_w, g.pad_w, g.dil_w, g.W, ww))
                                    continue;
                                const int64_t xi = ((n * g.C + c) * g.H + h) * g.W + ww;
                                const int64_t wi = ((k * g.C + c) * g.R + rr) * g.S + ss;
                                dx.value[xi] += d * w[wi];
                                dx.mag[xi] += std::fabs(d * w[wi]);
                                dw.value[wi] += d * x[xi];
                                dw.mag[wi] += std::fabs(d * x[xi]);
                            }
                }
}

}  // namespace

TEST_CASE("conv2d forward, backward-data and backward-weight match the definition") {
    struct Case {
        int64_t N, C, H, W, K, R, S, sh, sw, ph, pw, dh, dw;
    };
    const Case cases[] = {
        {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1},     // scalar
        {2, 3, 7, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1},     // "same" 3x3
        {3, 2, 13, 17, 5, 3, 3, 2, 2, 1, 1, 1, 1},   // stride 2, batch > threads
        {1, 4, 17, 13, 3, 3, 5, 1, 2, 2, 1, 2, 2},   // dilation 2, rectangular kernel
        {2, 3, 9, 11, 6, 1, 1, 1, 1, 0, 0, 1, 1},    // 1x1: input used as col directly
        {4, 5, 8, 8, 7, 1, 1, 2, 2, 0, 0, 1, 1},     // 1x1 with stride 2
        {5, 3, 10, 10, 2, 4, 4, 3, 2, 2, 0, 3, 1},   // large stride and dilation, odd batch
        {2, 2, 3, 3, 3, 5, 5, 1, 1, 2, 2, 1, 1},     // kernel larger than the input
        {1, 16, 31, 33, 33, 3, 3, 1, 1, 1, 1, 1, 1}, // wider channels, single image (threaded GEMM)
        {3, 7, 20, 19, 9, 5, 5, 2, 2, 2, 2, 1, 1},
        // Stride 1 with Q == W: im2col/col2im copy whole shifted rows (flat_rows).
        {2, 3, 6, 9, 4, 5, 5, 1, 1, 2, 2, 1, 1},     // 5x5 "same": two padding taps per row
        {1, 2, 9, 7, 3, 3, 3, 1, 1, 2, 2, 2, 2},     // dilated "same"
        {2, 2, 5, 6, 3, 3, 1, 1, 1, 0, 0, 1, 1},     // 3x1, no padding: only rows are cut
        {1, 3, 4, 3, 2, 1, 3, 1, 1, 3, 1, 1, 1},     // tall padding: output rows that read only zeros
        {2, 2, 2, 2, 3, 7, 7, 1, 1, 3, 3, 1, 1},     // padding taps wider than the map
        // Maps of at most 32 pixels (64 for the weight gradient): runs of images share one GEMM.
        {6, 8, 2, 2, 5, 3, 3, 1, 1, 1, 1, 1, 1},     // 2x2 maps, one run
        {5, 6, 4, 4, 7, 3, 3, 1, 1, 1, 1, 1, 1},     // 4x4 maps, one run in every pass
        {9, 4, 8, 8, 3, 3, 3, 1, 1, 1, 1, 1, 1},     // 8x8 maps: per image, but weight-gradient runs of 8 and 1
        {3, 5, 4, 4, 6, 1, 1, 1, 1, 0, 0, 1, 1},     // 1x1 kernel on small maps
        {130, 2, 1, 1, 3, 1, 1, 1, 1, 0, 0, 1, 1},   // 1x1 maps: runs of 512 images capped by N
        {2, 3, 1, 1, 4, 1, 1, 1, 1, 0, 0, 1, 1},     // a run of two 1x1 maps: a 2-column GEMM
        // One image on a tiny map: the GEMM's unpacked or C^T paths instead of a packed im2col.
        {1, 8, 2, 2, 5, 3, 3, 1, 1, 1, 1, 1, 1},     // 2x2 map: 4 columns
        {1, 4, 4, 4, 20, 3, 3, 1, 1, 1, 1, 1, 1},    // 4x4 map: 16 columns, computed as C^T
        // Every window covers the whole map, 8+ images: one GEMM with the whole-map weight.
        {16, 8, 2, 2, 5, 3, 3, 1, 1, 1, 1, 1, 1},    // VGG-11's 2x2 layers
        {9, 6, 1, 1, 7, 3, 3, 1, 1, 1, 1, 1, 1},     // 3x3 on 1x1 maps: only the centre tap is used
        {8, 3, 2, 3, 4, 3, 5, 1, 1, 1, 2, 1, 1},     // rectangular map and kernel
        {11, 5, 2, 2, 6, 3, 3, 2, 2, 1, 1, 1, 1},    // stride 2: 1x1 output
        // Maps of at least 14x14 pixels, stride 1, more than four input channels: backward-data as a
        // forward convolution with the flipped, transposed weight and padding R-1-p.
        {1, 5, 56, 56, 5, 3, 3, 1, 1, 1, 1, 1, 1},   // "same" 3x3 (VGG at 224)
        {2, 6, 60, 58, 3, 5, 3, 1, 1, 0, 1, 1, 1},   // no padding in one direction, rectangular kernel
        {1, 5, 57, 61, 2, 5, 5, 1, 1, 4, 3, 1, 1},   // padding R-1: the transposed convolution has none
        {1, 3, 56, 56, 5, 3, 3, 1, 1, 1, 1, 1, 1},   // three input channels: the col path instead
        // 14x14 "same": the weight gradient's row_dot takes runs of 7 images (each slot's last run shorter).
        {17, 6, 14, 14, 5, 3, 3, 1, 1, 1, 1, 1, 1},
    };
    Generator gen(4);
    for (const Case& c : cases) {
        const Conv2dGeom g = make_conv2d_geom(c.N, c.C, c.H, c.W, c.K, c.R, c.S, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw);
        INFO("N=", c.N, " C=", c.C, " H=", c.H, " W=", c.W, " K=", c.K, " R=", c.R, " S=", c.S, " stride=", c.sh,
             "x", c.sw, " pad=", c.ph, "x", c.pw, " dil=", c.dh, "x", c.dw);
        const auto x = uniform(gen, g.x_numel()), w = uniform(gen, g.w_numel()), bias = uniform(gen, g.K);
        const auto dy = uniform(gen, g.y_numel());
        Backend& b = cpu_backend();
        const ConvRef yr = naive_conv_forward(g, x, w, bias);
        ConvRef dxr, dwr, dbr;
        naive_conv_backward(g, x, w, dy, dxr, dwr, dbr);
        // Every instruction set: the weight gradient of stride-1 convolutions takes
        // row_dot under AVX-512 and im2col + GEMM otherwise.
        const cpu::GemmIsa saved = cpu::gemm_isa();
        for (cpu::GemmIsa isa : {cpu::GemmIsa::Avx512, cpu::GemmIsa::Avx2, cpu::GemmIsa::Scalar}) {
            if (!cpu::gemm_isa_available(isa)) continue;
            cpu::set_gemm_isa(isa);
            INFO("isa=", cpu::gemm_isa_name(isa));
            std::vector<float> y(g.y_numel(), std::numeric_limits<float>::quiet_NaN());
            b.conv2d_forward(g, x.data(), w.data(), bias.data(), y.data());
            // Each output is a float dot product of length C*R*S plus the bias.
            check_sums("conv2d_forward", y, yr.value, yr.mag, static_cast<double>(g.C * g.R * g.S + 1));
            // The fused ReLU is max(0, the same value): exact.
            std::vector<float> yrelu(g.y_numel(), std::numeric_limits<float>::quiet_NaN());
            b.conv2d_forward_relu(g, x.data(), w.data(), bias.data(), yrelu.data());
            bool relu_exact = true;
            for (size_t i = 0; i < y.size(); ++i) relu_exact = relu_exact && yrelu[i] == std::max(y[i], 0.f);
            CHECK(relu_exact);

            std::vector<float> dx(g.x_numel(), std::numeric_limits<float>::quiet_NaN());
            b.conv2d_backward_data(g, dy.data(), w.data(), dx.data());
            // dx sums K*R*S products through the GEMM plus up to R*S col2im additions.
            check_sums("conv2d_backward_data", dx, dxr.value, dxr.mag,
                       static_cast<double>(g.K * g.R * g.S + g.R * g.S));

            std::vector<float> dw(g.w_numel(), std::numeric_limits<float>::quiet_NaN()), db(g.K);
            b.conv2d_backward_weight(g, x.data(), dy.data(), dw.data(), db.data());
            // dw sums P*Q products per image (P*(Q + padding) with row_dot), then N partial sums.
            check_sums("conv2d_backward_weight", dw, dwr.value, dwr.mag,
                       static_cast<double>(g.N * g.P * (g.W + 2 * g.pad_w) + g.N));
            check_sums("conv2d dbias", db, dbr.value, dbr.mag, static_cast<double>(g.N * g.P * g.Q));
        }
        cpu::set_gemm_isa(saved);
    }
}

TEST_CASE("conv2d forward without bias and backward-weight without dbias") {
    Generator gen(5);
    const Conv2dGeom g = make_conv2d_geom(2, 3, 6, 5, 4, 3, 2, 1, 1, 1, 0);
    const auto x = uniform(gen, g.x_numel()), w = uniform(gen, g.w_numel()), dy = uniform(gen, g.y_numel());
    const std::vector<float> zero_bias(g.K, 0.f);
    std::vector<float> y(g.y_numel()), dw(g.w_numel());
    cpu_backend().conv2d_forward(g, x.data(), w.data(), nullptr, y.data());
    const ConvRef yr = naive_conv_forward(g, x, w, zero_bias);
    check_sums("conv2d_forward (no bias)", y, yr.value, yr.mag, static_cast<double>(g.C * g.R * g.S));
    ConvRef dxr, dwr, dbr;
    naive_conv_backward(g, x, w, dy, dxr, dwr, dbr);
    cpu_backend().conv2d_backward_weight(g, x.data(), dy.data(), dw.data(), nullptr);
    check_sums("conv2d_backward_weight (no dbias)", dw, dwr.value, dwr.mag, static_cast<double>(g.N * g.P * g.Q + g.N));
}

TEST_CASE("conv2d_lrp_term is bit for bit the four passes it fuses, where it applies") {
    Generator gen(12);
    Backend& b = cpu_backend();
    const float eps = 1e-6f;
    // Per-image packed paths (fused; the backward-data as a col GEMM on 9x9 and with
    // stride 2, as a forward with the flipped weight from 14x14 on, one image on a
    // threaded GEMM), then a 1x1 kernel and small maps (not fused: false).
    const Conv2dGeom fused[] = {make_conv2d_geom(3, 4, 9, 9, 20, 3, 3, 1, 1, 1, 1),
                                make_conv2d_geom(2, 8, 14, 14, 16, 3, 3, 1, 1, 1, 1),
                                make_conv2d_geom(1, 5, 20, 20, 12, 3, 3, 1, 1, 1, 1),
                                make_conv2d_geom(1, 3, 12, 10, 9, 3, 3, 2, 2, 1, 1)};
    for_each_gemm_isa([&] {
        for (const Conv2dGeom& g : fused) {
            INFO("C=", g.C, " H=", g.H, " K=", g.K, " stride=", g.stride_h);
            const auto x = uniform(gen, g.x_numel()), w = uniform(gen, g.w_numel()), bias = uniform(gen, g.K);
            const auto r = uniform(gen, g.y_numel());
            std::vector<float> z(g.y_numel()), s(g.y_numel()), c(g.x_numel()), want(g.x_numel()), got(g.x_numel());
            b.conv2d_forward(g, x.data(), w.data(), bias.data(), z.data());
            b.lrp_divide(g.y_numel(), eps, r.data(), z.data(), s.data());
            b.conv2d_backward_data(g, s.data(), w.data(), c.data());
            b.mul(g.x_numel(), x.data(), c.data(), want.data());
            // The forward computed, kept, then given (a remembered forward).
            std::vector<float> kept(g.y_numel(), -1.f), again(g.x_numel());
            REQUIRE(b.conv2d_lrp_term(g, x.data(), w.data(), bias.data(), r.data(), eps, got.data(), nullptr, nullptr));
            CHECK(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0);
            REQUIRE(b.conv2d_lrp_term(g, x.data(), w.data(), bias.data(), r.data(), eps, got.data(), nullptr,
                                      kept.data()));
            CHECK(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0);
            CHECK(std::memcmp(kept.data(), z.data(), z.size() * sizeof(float)) == 0);
            REQUIRE(b.conv2d_lrp_term(g, x.data(), w.data(), bias.data(), r.data(), eps, again.data(), kept.data(),
                                      nullptr));
            CHECK(std::memcmp(again.data(), want.data(), want.size() * sizeof(float)) == 0);
        }
    });
    const float one = 1.f;
    float out = 0.f;
    CHECK_FALSE(b.conv2d_lrp_term(make_conv2d_geom(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0), &one, &one, nullptr, &one, eps,
                                  &out, nullptr, nullptr));
    CHECK(out == 0.f);
}

TEST_CASE("conv2d forward of one image is the same on one thread and on several") {
    // One image: the implicit GEMM is threaded, each thread packing the weight and
    // copying the image for itself (forward_image); every output is the same
    // blocked dot product whichever thread computes it.
    Generator gen(12);
    const Conv2dGeom shapes[] = {make_conv2d_geom(1, 32, 28, 28, 32, 3, 3, 1, 1, 1, 1),
                                 make_conv2d_geom(1, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1),
                                 make_conv2d_geom(1, 5, 9, 11, 70, 5, 5, 1, 1, 2, 2)};
    const int saved = num_threads();
    for (const Conv2dGeom& g : shapes) {
        const auto x = uniform(gen, g.x_numel()), w = uniform(gen, g.w_numel()), bias = uniform(gen, g.K);
        const auto run = [&](int threads) {
            set_num_threads(threads);
            std::vector<float> y(g.y_numel(), std::numeric_limits<float>::quiet_NaN());
            cpu_backend().conv2d_forward_relu(g, x.data(), w.data(), bias.data(), y.data());
            return y;
        };
        const std::vector<float> one = run(1);
        for (int threads : {2, 3}) {
            CAPTURE(g.C);
            CAPTURE(threads);
            CHECK(std::memcmp(run(threads).data(), one.data(), one.size() * sizeof(float)) == 0);
        }
    }
    set_num_threads(saved);
}

TEST_CASE("conv2d backward-weight of an empty batch is zero") {
    const Conv2dGeom g = make_conv2d_geom(0, 2, 4, 4, 3, 3, 3, 1, 1, 1, 1);
    std::vector<float> dw(g.w_numel(), 7.f), db(g.K, 7.f);
    cpu_backend().conv2d_backward_weight(g, nullptr, nullptr, dw.data(), db.data());
    for (float v : dw) CHECK(v == 0.f);
    for (float v : db) CHECK(v == 0.f);
}
