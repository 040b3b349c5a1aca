// CPU backend: max / average / adaptive-average pooling and bilinear resize
// against naive double-precision loops written here, plus PyTorch values.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/rng.h"
#include "kernels/backend.h"
#include "kernels/common/resize.h"
#include "kernels/geometry.h"
#include "kernel_reference.h"

using namespace gb;
using namespace gb::kernels;
using gbtest::check_close;
using gbtest::check_sums;
using gbtest::uniform;

namespace {

const double kInf = std::numeric_limits<double>::infinity();

// Max pooling by the definition: scan the padded window in row-major order,
// padding never wins, a tap replaces the best only when strictly greater.
void naive_maxpool(const Pool2dGeom& g, const std::vector<float>& x, std::vector<double>& y,
                   std::vector<int32_t>& idx) {
    y.assign(g.y_numel(), 0.0);
    idx.assign(g.y_numel(), -1);
    for (int64_t pl = 0; pl < g.planes(); ++pl)
        for (int64_t p = 0; p < g.P; ++p)
            for (int64_t q = 0; q < g.Q; ++q) {
                double best = -kInf;
                int32_t bi = -1;
                for (int64_t i = 0; i < g.kh; ++i)
                    for (int64_t j = 0; j < g.kw; ++j) {
                        const int64_t h = p * g.stride_h - g.pad_h + i, w = q * g.stride_w - g.pad_w + j;
                        if (h < 0 || h >= g.H || w < 0 || w >= g.W) continue;
                        const double v = x[(pl * g.H + h) * g.W + w];
                        if (bi < 0 || v > best) {
                            best = v;
                            bi = static_cast<int32_t>(h * g.W + w);
                        }
                    }
                y[(pl * g.P + p) * g.Q + q] = best;
                idx[(pl * g.P + p) * g.Q + q] = bi;
            }
}

// Average pooling by the definition; the divisor counts padded taps when
// count_include_pad (PyTorch AvgPool2d). dx scatters dy / divisor.
void naive_avgpool(const Pool2dGeom& g, const std::vector<float>& x, const std::vector<float>& dy,
                   std::vector<double>& y, std::vector<double>& dx) {
    y.assign(g.y_numel(), 0.0);
    dx.assign(g.x_numel(), 0.0);
    for (int64_t pl = 0; pl < g.planes(); ++pl)
        for (int64_t p = 0; p < g.P; ++p)
            for (int64_t q = 0; q < g.Q; ++q) {
                double s = 0;
                int64_t real = 0;
                for (int64_t i = 0; i < g.kh; ++i)
                    for (int64_t j = 0; j < g.kw; ++j) {
                        const int64_t h = p * g.stride_h - g.pad_h + i, w = q * g.stride_w - g.pad_w + j;
                        if (h < 0 || h >= g.H || w < 0 || w >= g.W) continue;
                        s += x[(pl * g.H + h) * g.W + w];
                        ++real;
                    }
                const double div = g.count_include_pad ? static_cast<double>(g.kh * g.kw) : static_cast<double>(real);
                const int64_t o = (pl * g.P + p) * g.Q + q;
                y[o] = s / div;
                for (int64_t i = 0; i < g.kh; ++i)
                    for (int64_t j = 0; j < g.kw; ++j) {
                        const int64_t h = p * g.stride_h - g.pad_h + i, w = q * g.stride_w - g.pad_w + j;
                        if (h < 0 || h >= g.H || w < 0 || w >= g.W) continue;
                        dx[(pl * g.H + h) * g.W + w] += dy[o] / div;
                    }
            }
}

struct PoolCase {
    int64_t N, C, H, W, kh, kw, sh, sw, ph, pw;
};
const PoolCase kPoolCases[] = {
    {1, 1, 1, 1, 1, 1, 1, 1, 0, 0},  {2, 3, 8, 8, 2, 2, 2, 2, 0, 0},   {1, 2, 7, 9, 3, 3, 2, 2, 1, 1},
    {2, 1, 13, 17, 3, 3, 1, 1, 1, 1}, {3, 2, 17, 13, 5, 3, 2, 1, 2, 1}, {1, 3, 31, 33, 4, 4, 3, 3, 2, 2},
    {2, 2, 6, 5, 2, 3, 1, 2, 1, 1},   {1, 1, 3, 3, 3, 3, 1, 1, 1, 1},   {2, 3, 7, 9, 2, 2, 2, 2, 0, 0},
    {1, 2, 28, 28, 2, 2, 2, 2, 0, 0},
    // 2x2 stride 2 rows of 7, 10, 17 and 20 outputs: one by one, runs of 8 and of 16
    // with an overlapping last run.
    {2, 2, 14, 14, 2, 2, 2, 2, 0, 0}, {1, 3, 9, 21, 2, 2, 2, 2, 0, 0},  {1, 2, 6, 35, 2, 2, 2, 2, 0, 0},
    {1, 1, 4, 40, 2, 2, 2, 2, 0, 0},
    // Small planes in runs across rows and planes: groups of 28 planes of 3x3 outputs (one
    // partial), 42 planes of 2x3 (a full group and a partial one), one plane of 35x5, and
    // 60x5 outputs (more than one group holds: row by row).
    {3, 7, 6, 6, 2, 2, 2, 2, 0, 0},   {5, 13, 4, 7, 2, 2, 2, 2, 0, 0},  {1, 1, 70, 10, 2, 2, 2, 2, 0, 0},
    {1, 1, 120, 11, 2, 2, 2, 2, 0, 0},
};

}  // namespace

TEST_CASE("max pooling values, indices and backward match the definition") {
    Generator gen(10);
    for (const PoolCase& c : kPoolCases) {
        const Pool2dGeom g = make_pool2d_geom(c.N, c.C, c.H, c.W, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw);
        INFO("H=", c.H, " W=", c.W, " k=", c.kh, "x", c.kw, " stride=", c.sh, "x", c.sw, " pad=", c.ph, "x", c.pw);
        for (int quantized = 0; quantized < 2; ++quantized) {
            // Quantized inputs (values in {0, 1, 2}) make ties common in every window.
            auto x = uniform(gen, g.x_numel());
            if (quantized)
                for (float& v : x) v = std::floor((v + 1.f) * 1.5f);
            std::vector<double> yr;
            std::vector<int32_t> ir;
            naive_maxpool(g, x, yr, ir);
            std::vector<float> y(g.y_numel());
            std::vector<int32_t> idx(g.y_numel());
            cpu_backend().maxpool2d_forward(g, x.data(), y.data(), idx.data());
            // A maximum is one of the inputs: exact.
            check_close("maxpool2d_forward", y, yr, 0.0, 0.0);
            CHECK(idx == ir);

            const auto dy = uniform(gen, g.y_numel());
            std::vector<double> dxr(g.x_numel(), 0.0), mag(g.x_numel(), 0.0);
            for (int64_t pl = 0; pl < g.planes(); ++pl)
                for (int64_t o = 0; o < g.P * g.Q; ++o) {
                    dxr[pl * g.H * g.W + ir[pl * g.P * g.Q + o]] += dy[pl * g.P * g.Q + o];
                    mag[pl * g.H * g.W + ir[pl * g.P * g.Q + o]] += std::fabs(dy[pl * g.P * g.Q + o]);
                }
            std::vector<float> dx(g.x_numel(), std::numeric_limits<float>::quiet_NaN());
            cpu_backend().maxpool2d_backward(g, dy.data(), idx.data(), dx.data());
            // Each dx sums the dy of the windows whose maximum it is: up to kh*kw terms.
            check_sums("maxpool2d_backward", dx, dxr, mag, static_cast<double>(c.kh * c.kw));
        }
    }
}

TEST_CASE("max pooling breaks ties by the first maximum in row-major window order") {
    // A constant plane: every window's first real tap wins.
    const Pool2dGeom g = make_pool2d_geom(1, 1, 5, 5, 3, 3, 1, 1, 1, 1);
    const std::vector<float> x(25, 4.f);
    std::vector<float> y(g.y_numel());
    std::vector<int32_t> idx(g.y_numel());
    cpu_backend().maxpool2d_forward(g, x.data(), y.data(), idx.data());
    for (int64_t p = 0; p < g.P; ++p)
        for (int64_t q = 0; q < g.Q; ++q) {
            const int64_t h = std::max<int64_t>(p - 1, 0), w = std::max<int64_t>(q - 1, 0);
            CHECK(idx[p * g.Q + q] == h * 5 + w);
            CHECK(y[p * g.Q + q] == 4.f);
        }
    // Two equal maxima in one 2x2 window: (0,1) comes before (1,0).
    const Pool2dGeom g2 = make_pool2d_geom(1, 1, 2, 2, 2, 2, 2, 2, 0, 0);
    const float x2[4] = {1.f, 9.f, 9.f, 3.f};
    float y2;
    int32_t i2;
    cpu_backend().maxpool2d_forward(g2, x2, &y2, &i2);
    CHECK(y2 == 9.f);
    CHECK(i2 == 1);
}

TEST_CASE("max pooling propagates the first NaN of a window, like PyTorch") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    // The 2x2 stride-2 path and the general path (3x3 windows, padding 1).
    const float x[4] = {1.f, 5.f, nan, nan};
    for (const Pool2dGeom& g : {make_pool2d_geom(1, 1, 2, 2, 2, 2, 2, 2, 0, 0), make_pool2d_geom(1, 1, 2, 2, 3, 3, 2, 2, 1, 1)}) {
        float y = 0.f;
        int32_t i = -1;
        cpu_backend().maxpool2d_forward(g, x, &y, &i);
        CHECK(std::isnan(y));
        CHECK(i == 2);
    }
    // Rows of 10 outputs (runs of 8): NaNs in the first, the overlapping and the last window.
    const Pool2dGeom g = make_pool2d_geom(1, 1, 2, 20, 2, 2, 2, 2, 0, 0);
    std::vector<float> xs(40);
    for (size_t k = 0; k < xs.size(); ++k) xs[k] = static_cast<float>(k % 7);
    xs[21] = nan;  // window 0, second row: first NaN at index 21 though 0..1 and 20 are numbers
    xs[5] = nan;   // window 2 (in both runs of 8)
    xs[39] = nan;  // window 9, its last tap
    xs[38] = nan;  // ... and the one before it: the first NaN wins
    std::vector<float> ys(10);
    std::vector<int32_t> is(10);
    cpu_backend().maxpool2d_forward(g, xs.data(), ys.data(), is.data());
    CHECK(std::isnan(ys[0]));
    CHECK(is[0] == 21);
    CHECK(std::isnan(ys[2]));
    CHECK(is[2] == 5);
    CHECK(std::isnan(ys[9]));
    CHECK(is[9] == 38);
    CHECK(!std::isnan(ys[5]));
    // Small planes (runs across planes): 8 planes of 2x2 outputs, NaNs in plane 5.
    const Pool2dGeom gs = make_pool2d_geom(2, 4, 4, 4, 2, 2, 2, 2, 0, 0);
    std::vector<float> xsm(128);
    for (size_t k = 0; k < xsm.size(); ++k) xsm[k] = static_cast<float>((k * 5) % 11);
    xsm[5 * 16 + 4] = nan;  // plane 5, output (0, 0): taps 0, 1, 4, 5 -> first NaN at 4
    xsm[5 * 16 + 5] = nan;
    std::vector<float> ysm(32);
    std::vector<int32_t> ism(32);
    cpu_backend().maxpool2d_forward(gs, xsm.data(), ysm.data(), ism.data());
    CHECK(std::isnan(ysm[5 * 4]));
    CHECK(ism[5 * 4] == 4);
    CHECK(!std::isnan(ysm[5 * 4 + 1]));
}

TEST_CASE("average pooling forward and backward, count_include_pad both ways") {
    Generator gen(11);
    for (const PoolCase& c : kPoolCases)
        for (bool include : {true, false}) {
            const Pool2dGeom g = make_pool2d_geom(c.N, c.C, c.H, c.W, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, include);
            INFO("H=", c.H, " W=", c.W, " k=", c.kh, "x", c.kw, " stride=", c.sh, "x", c.sw, " pad=", c.ph, "x",
                 c.pw, " count_include_pad=", include);
            const auto x = uniform(gen, g.x_numel()), dy = uniform(gen, g.y_numel());
            std::vector<double> yr, dxr;
            naive_avgpool(g, x, dy, yr, dxr);
            std::vector<float> y(g.y_numel()), dx(g.x_numel(), std::numeric_limits<float>::quiet_NaN());
            cpu_backend().avgpool2d_forward(g, x.data(), y.data());
            cpu_backend().avgpool2d_backward(g, dy.data(), dx.data());
            // A float sum of at most kh*kw terms in [-1, 1], then one division by a
            // divisor >= 1: sum_bound with terms = kh*kw and sum|terms| <= kh*kw.
            const double terms = static_cast<double>(c.kh * c.kw);
            check_sums("avgpool2d_forward", y, yr, std::vector<double>(yr.size(), terms), terms);
            // dx adds one dy / divisor per covering window (at most kh*kw windows).
            check_sums("avgpool2d_backward", dx, dxr, std::vector<double>(dxr.size(), terms), terms);
        }
}

namespace {
// PyTorch's adaptive window: [floor(i*in/out), ceil((i+1)*in/out)).
void adaptive_span(int64_t i, int64_t in, int64_t out, int64_t& s, int64_t& e) {
    s = static_cast<int64_t>(std::floor(static_cast<double>(i) * in / out));
    e = static_cast<int64_t>(std::ceil(static_cast<double>(i + 1) * in / out));
}
}  // namespace

TEST_CASE("adaptive average pooling with divisible and non-divisible sizes") {
    struct Case {
        int64_t planes, H, W, P, Q;
    };
    const Case cases[] = {{3, 8, 8, 4, 4}, {2, 7, 5, 3, 2}, {1, 13, 17, 5, 7}, {4, 6, 6, 1, 1},
                          {2, 3, 5, 5, 7}, {1, 1, 1, 3, 2}, {2, 31, 33, 7, 6}};
    Generator gen(12);
    for (const Case& c : cases) {
        INFO("H=", c.H, " W=", c.W, " P=", c.P, " Q=", c.Q);
        const auto x = uniform(gen, c.planes * c.H * c.W), dy = uniform(gen, c.planes * c.P * c.Q);
        std::vector<double> yr(c.planes * c.P * c.Q, 0.0), dxr(c.planes * c.H * c.W, 0.0);
        double max_window = 1;
        for (int64_t pl = 0; pl < c.planes; ++pl)
            for (int64_t p = 0; p < c.P; ++p)
                for (int64_t q = 0; q < c.Q; ++q) {
                    int64_t h0, h1, w0, w1;
                    adaptive_span(p, c.H, c.P, h0, h1);
                    adaptive_span(q, c.W, c.Q, w0, w1);
                    const double n = static_cast<double>((h1 - h0) * (w1 - w0));
                    max_window = std::max(max_window, n);
                    double s = 0;
                    for (int64_t h = h0; h < h1; ++h)
                        for (int64_t w = w0; w < w1; ++w) s += x[(pl * c.H + h) * c.W + w];
                    const int64_t o = (pl * c.P + p) * c.Q + q;
                    yr[o] = s / n;
                    for (int64_t h = h0; h < h1; ++h)
                        for (int64_t w = w0; w < w1; ++w) dxr[(pl * c.H + h) * c.W + w] += dy[o] / n;
                }
        std::vector<float> y(yr.size()), dx(dxr.size(), std::numeric_limits<float>::quiet_NaN());
        cpu_backend().adaptive_avgpool2d_forward(c.planes, c.H, c.W, c.P, c.Q, x.data(), y.data());
        cpu_backend().adaptive_avgpool2d_backward(c.planes, c.H, c.W, c.P, c.Q, dy.data(), dx.data());
        // Sums of at most max_window terms in [-1, 1] (see average pooling).
        check_sums("adaptive_avgpool2d_forward", y, yr, std::vector<double>(yr.size(), max_window), max_window);
        check_sums("adaptive_avgpool2d_backward", dx, dxr, std::vector<double>(dxr.size(), max_window), max_window);
    }
}

namespace {

// PyTorch's bilinear taps in double (area_pixel_compute_source_index).
void taps(int64_t in, int64_t out, bool ac, int64_t d, int64_t& i0, int64_t& i1, double& l) {
    const double scale = ac ? (out > 1 ? static_cast<double>(in - 1) / (out - 1) : 0.0) : static_cast<double>(in) / out;
    double src = ac ? scale * d : scale * (d + 0.5) - 0.5;
    if (!ac && src < 0) src = 0;
    i0 = std::min<int64_t>(static_cast<int64_t>(std::floor(src)), in - 1);
    i1 = std::min<int64_t>(i0 + 1, in - 1);
    l = src - i0;
}

void naive_resize(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, bool ac, const std::vector<float>& x,
                  const std::vector<float>& dy, std::vector<double>& y, std::vector<double>& dx) {
    y.assign(planes * OH * OW, 0.0);
    dx.assign(planes * H * W, 0.0);
    for (int64_t pl = 0; pl < planes; ++pl)
        for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow) {
                int64_t h0, h1, w0, w1;
                double lh, lw;
                taps(H, OH, ac, oh, h0, h1, lh);
                taps(W, OW, ac, ow, w0, w1, lw);
                const double wt[4] = {(1 - lh) * (1 - lw), (1 - lh) * lw, lh * (1 - lw), lh * lw};
                const int64_t src[4] = {h0 * W + w0, h0 * W + w1, h1 * W + w0, h1 * W + w1};
                const int64_t o = (pl * OH + oh) * OW + ow;
                for (int t = 0; t < 4; ++t) {
                    y[o] += wt[t] * x[pl * H * W + src[t]];
                    dx[pl * H * W + src[t]] += wt[t] * dy[o];
                }
            }
}

}  // namespace

TEST_CASE("bilinear resize up and down, both align_corners modes") {
    struct Case {
        int64_t planes, H, W, OH, OW;
    };
    const Case cases[] = {{2, 3, 5, 7, 11}, {3, 17, 13, 5, 4}, {1, 8, 8, 8, 8},  {2, 1, 1, 3, 4},
                          {1, 6, 7, 1, 1},  {2, 4, 9, 13, 3},  {1, 31, 33, 65, 17}};
    Generator gen(13);
    for (const Case& c : cases)
        for (bool ac : {false, true}) {
            INFO("H=", c.H, " W=", c.W, " OH=", c.OH, " OW=", c.OW, " align_corners=", ac);
            const auto x = uniform(gen, c.planes * c.H * c.W), dy = uniform(gen, c.planes * c.OH * c.OW);
            std::vector<double> yr, dxr;
            naive_resize(c.planes, c.H, c.W, c.OH, c.OW, ac, x, dy, yr, dxr);
            std::vector<float> y(yr.size()), dx(dxr.size(), std::numeric_limits<float>::quiet_NaN());
            cpu_backend().resize_bilinear_forward(c.planes, c.H, c.W, c.OH, c.OW, ac, x.data(), y.data());
            cpu_backend().resize_bilinear_backward(c.planes, c.H, c.W, c.OH, c.OW, ac, dy.data(), dx.data());
            // The kernel computes the source coordinate in float (as PyTorch does):
            // its error ~ 2^-24 * max(H, W) shifts each weight by about that much, on
            // values in [-1, 1], plus a few roundings: 1e-5 covers sizes up to ~65.
            check_close("resize_bilinear_forward", y, yr, 0.0, 1e-5);
            // dx gathers up to ~4 * ceil(OH/H) * ceil(OW/W) weighted dy terms.
            const double fan = 4.0 * ((c.OH + c.H - 1) / c.H) * ((c.OW + c.W - 1) / c.W);
            check_close("resize_bilinear_backward", dx, dxr, 0.0, 1e-5 * fan);
        }
}

TEST_CASE("bilinear resize reproduces PyTorch's 2x2 -> 4x4 outputs") {
    const float x[4] = {1.f, 2.f, 3.f, 4.f};
    std::vector<float> y(16);
    // F.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]), size=4, mode='bilinear', align_corners=False)
    const std::vector<double> half_pixel = {1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5,
                                            2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0};
    cpu_backend().resize_bilinear_forward(1, 2, 2, 4, 4, false, x, y.data());
    check_close("align_corners=False", y, half_pixel, 0.0, 1e-6);
    // ... align_corners=True: steps of 1/3 along rows, 2/3 along columns.
    std::vector<double> corners(16);
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) corners[i * 4 + j] = 1.0 + 2.0 * i / 3.0 + j / 3.0;
    cpu_backend().resize_bilinear_forward(1, 2, 2, 4, 4, true, x, y.data());
    check_close("align_corners=True", y, corners, 0.0, 1e-6);
}

TEST_CASE("bilinear source index rules of PyTorch") {
    // align_corners = true with one output: scale 0, the first source pixel.
    CHECK(resize_scale(5, 1, true) == 0.f);
    const LinearTaps t = linear_taps(5, 1, true, 0);
    CHECK(t.i0 == 0);
    CHECK(t.w1 == 0.f);
    // align_corners = false clamps a negative source coordinate to 0.
    CHECK(resize_source_index(resize_scale(4, 8, false), 0, false) == 0.f);
    // Downscaling by 2 samples between the two source pixels.
    CHECK(resize_source_index(resize_scale(8, 4, false), 1, false) == doctest::Approx(2.5));
    // The last source pixel has no right neighbour: both taps coincide.
    const LinearTaps last = linear_taps(3, 3, true, 2);
    CHECK(last.i0 == 2);
    CHECK(last.i1 == 2);
}
