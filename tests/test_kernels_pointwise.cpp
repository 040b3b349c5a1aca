// CPU backend: element-wise ops, bias, reductions, the softmax family,
// cross-entropy and dropout against naive double-precision loops written here.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/philox.h"
#include "core/rng.h"
#include "kernels/backend.h"
#include "kernel_reference.h"

using namespace gb;
using namespace gb::kernels;
using gbtest::check_close;
using gbtest::check_sums;
using gbtest::to_double;
using gbtest::uniform;

namespace {
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const int64_t kLengths[] = {0, 1, 3, 7, 13, 33, 65, 100003};
}  // namespace

TEST_CASE("fill and copy") {
    Generator g(20);
    for (int64_t n : kLengths) {
        std::vector<float> out(n, kNaN);
        cpu_backend().fill(n, 2.5f, out.data());
        CHECK(out == std::vector<float>(n, 2.5f));
        const auto x = uniform(g, n);
        cpu_backend().copy(n, x.data(), out.data());
        CHECK(out == x);
    }
}

TEST_CASE("relu forward and backward; the derivative at 0 is 0") {
    Generator g(21);
    for (int64_t n : kLengths) {
        auto x = uniform(g, n);
        for (int64_t i = 0; i < n; i += 5) x[i] = 0.f;
        const auto dy = uniform(g, n);
        std::vector<float> y(n), dx(n), dx_from_y(n);
        cpu_backend().relu_forward(n, x.data(), y.data());
        cpu_backend().relu_backward(n, x.data(), dy.data(), dx.data());
        cpu_backend().relu_backward(n, y.data(), dy.data(), dx_from_y.data());
        int64_t bad = 0;
        for (int64_t i = 0; i < n; ++i) {
            if (y[i] != (x[i] > 0.f ? x[i] : 0.f)) ++bad;
            if (dx[i] != (x[i] > 0.f ? dy[i] : 0.f)) ++bad;
        }
        CHECK(bad == 0);
        CHECK(dx == dx_from_y);  // the output has the same sign test as the input
    }
    // NaN propagates through the forward (PyTorch's clamp_min behaviour).
    float nan_in = kNaN, out = 0.f;
    cpu_backend().relu_forward(1, &nan_in, &out);
    CHECK(std::isnan(out));
}

TEST_CASE("clamp and the LRP helpers: stabilised divide and sign mask") {
    Generator g(25);
    const float inf = std::numeric_limits<float>::infinity();
    for (int64_t n : kLengths) {
        auto z = uniform(g, n);
        for (int64_t i = 0; i < n; i += 7) z[i] = 0.f;
        const auto r = uniform(g, n);
        std::vector<float> pos(n), neg(n), box(n), q(n), q0(n), mp(n), mn(n);
        cpu_backend().clamp(n, 0.f, inf, z.data(), pos.data());
        cpu_backend().clamp(n, -inf, 0.f, z.data(), neg.data());
        cpu_backend().clamp(n, -0.25f, 0.5f, z.data(), box.data());
        cpu_backend().lrp_divide(n, 1e-2f, r.data(), z.data(), q.data());
        cpu_backend().lrp_divide(n, 0.f, r.data(), z.data(), q0.data());
        cpu_backend().lrp_mask_sign(n, 1, z.data(), r.data(), mp.data());
        cpu_backend().lrp_mask_sign(n, -1, z.data(), r.data(), mn.data());
        int64_t bad = 0;
        for (int64_t i = 0; i < n; ++i) {
            bad += pos[i] != std::max(z[i], 0.f);
            bad += neg[i] != std::min(z[i], 0.f);
            bad += box[i] != std::min(std::max(z[i], -0.25f), 0.5f);
            bad += pos[i] + neg[i] != z[i];
            // Closed form: r / (z + 0.01 sign(z)) with sign(0) = +1, so z = 0 gives r / 0.01.
            const double d = z[i] + (z[i] >= 0.f ? 1e-2 : -1e-2);
            bad += std::fabs(q[i] - r[i] / d) > 1e-6 * (1 + std::fabs(r[i] / d));
            bad += z[i] == 0.f ? q0[i] != 0.f : std::fabs(q0[i] - r[i] / z[i]) > 1e-6 * (1 + std::fabs(r[i] / z[i]));
            bad += mp[i] != (z[i] > 0.f ? r[i] : 0.f);
            bad += mn[i] != (z[i] < 0.f ? r[i] : 0.f);
        }
        CHECK(bad == 0);
    }
}

TEST_CASE("add, sub, mul, scale, axpy, in place too") {
    Generator g(22);
    for (int64_t n : kLengths) {
        const auto a = uniform(g, n), b = uniform(g, n);
        std::vector<float> add(n), sub(n), mul(n), scaled(n);
        cpu_backend().add(n, a.data(), b.data(), add.data());
        cpu_backend().sub(n, a.data(), b.data(), sub.data());
        cpu_backend().mul(n, a.data(), b.data(), mul.data());
        cpu_backend().scale(n, -1.5f, a.data(), scaled.data());
        // One IEEE operation per element: exactly the float result.
        int64_t bad = 0;
        for (int64_t i = 0; i < n; ++i)
            bad += (add[i] != a[i] + b[i]) + (sub[i] != a[i] - b[i]) + (mul[i] != a[i] * b[i]) +
                   (scaled[i] != -1.5f * a[i]);
        CHECK(bad == 0);
        // axpy may be contracted into one fused multiply-add: within 2 roundings of the exact value.
        std::vector<float> y = b;
        cpu_backend().axpy(n, 0.3f, a.data(), y.data());
        std::vector<double> ref(n), mag(n);
        for (int64_t i = 0; i < n; ++i) {
            ref[i] = static_cast<double>(b[i]) + 0.3 * static_cast<double>(a[i]);
            mag[i] = std::fabs(b[i]) + std::fabs(0.3 * a[i]);
        }
        check_sums("axpy", y, ref, mag, 2.0);
        // In place: out aliases the first input.
        std::vector<float> inplace = a;
        cpu_backend().add(n, inplace.data(), b.data(), inplace.data());
        CHECK(inplace == add);
    }
}

TEST_CASE("bias_add and bias_grad over [outer, channels, inner]") {
    struct Case {
        int64_t outer, channels, inner;
    };
    Generator g(23);
    for (const Case& c : {Case{1, 1, 1}, Case{3, 7, 13}, Case{2, 17, 1}, Case{5, 3, 1000}, Case{64, 33, 31}}) {
        INFO("outer=", c.outer, " channels=", c.channels, " inner=", c.inner);
        const int64_t n = c.outer * c.channels * c.inner;
        const auto bias = uniform(g, c.channels), y0 = uniform(g, n), dy = uniform(g, n);
        std::vector<float> y = y0;
        cpu_backend().bias_add(c.outer, c.channels, c.inner, bias.data(), y.data());
        int64_t bad = 0;
        for (int64_t i = 0; i < n; ++i) bad += y[i] != y0[i] + bias[(i / c.inner) % c.channels];
        CHECK(bad == 0);
        std::vector<double> ref(c.channels, 0.0), mag(c.channels, 0.0);
        for (int64_t i = 0; i < n; ++i) {
            ref[(i / c.inner) % c.channels] += dy[i];
            mag[(i / c.inner) % c.channels] += std::fabs(dy[i]);
        }
        std::vector<float> db(c.channels, kNaN);
        cpu_backend().bias_grad(c.outer, c.channels, c.inner, dy.data(), db.data());
        // Double accumulation: only the final rounding to float remains (bound for 1 term).
        check_sums("bias_grad", db, ref, mag, 1.0);
    }
}

TEST_CASE("sum_dim and broadcast_dim over the middle axis") {
    struct Case {
        int64_t outer, reduce, inner;
    };
    Generator g(24);
    for (const Case& c : {Case{1, 1, 1}, Case{3, 17, 33}, Case{7, 1, 5}, Case{2, 300, 257}, Case{13, 65, 1},
                          Case{4, 0, 3}, Case{1, 1000003, 1}, Case{2, 70000, 1}, Case{1, 3, 100003}}) {
        INFO("outer=", c.outer, " reduce=", c.reduce, " inner=", c.inner);
        const auto x = uniform(g, c.outer * c.reduce * c.inner, 0.f, 1.f);
        std::vector<double> ref(c.outer * c.inner, 0.0);
        for (int64_t o = 0; o < c.outer; ++o)
            for (int64_t r = 0; r < c.reduce; ++r)
                for (int64_t i = 0; i < c.inner; ++i) ref[o * c.inner + i] += x[(o * c.reduce + r) * c.inner + i];
        std::vector<float> out(ref.size(), kNaN);
        cpu_backend().sum_dim(c.outer, c.reduce, c.inner, x.data(), out.data());
        // Non-negative terms: even a million of them must be within 1e-6 relative
        // (double accumulation leaves ~2^-24 from the final rounding).
        check_close("sum_dim", out, ref, 1e-6, 0.0);

        const auto gin = uniform(g, c.outer * c.inner);
        std::vector<float> b(c.outer * c.reduce * c.inner, kNaN);
        cpu_backend().broadcast_dim(c.outer, c.reduce, c.inner, 0.5f, gin.data(), b.data());
        int64_t bad = 0;
        for (int64_t o = 0; o < c.outer; ++o)
            for (int64_t r = 0; r < c.reduce; ++r)
                for (int64_t i = 0; i < c.inner; ++i)
                    bad += b[(o * c.reduce + r) * c.inner + i] != 0.5f * gin[o * c.inner + i];
        CHECK(bad == 0);
    }
}

namespace {

struct SoftmaxRef {
    std::vector<double> soft, log_soft;
};

SoftmaxRef naive_softmax(int64_t rows, int64_t cols, const std::vector<float>& x) {
    SoftmaxRef r{std::vector<double>(x.size()), std::vector<double>(x.size())};
    for (int64_t i = 0; i < rows; ++i) {
        double m = -std::numeric_limits<double>::infinity(), s = 0;
        for (int64_t j = 0; j < cols; ++j) m = std::max(m, static_cast<double>(x[i * cols + j]));
        for (int64_t j = 0; j < cols; ++j) s += std::exp(x[i * cols + j] - m);
        for (int64_t j = 0; j < cols; ++j) {
            r.log_soft[i * cols + j] = x[i * cols + j] - m - std::log(s);
            r.soft[i * cols + j] = std::exp(r.log_soft[i * cols + j]);
        }
    }
    return r;
}

}  // namespace

TEST_CASE("softmax and log-softmax forward and backward") {
    struct Case {
        int64_t rows, cols;
        float offset;  // added to every logit: a large one would overflow an unshifted exp
    };
    Generator g(25);
    for (const Case& c : {Case{1, 1, 0.f}, Case{3, 7, 0.f}, Case{17, 13, 100.f}, Case{65, 33, -1e4f},
                          Case{5, 1000, 1e4f}, Case{2000, 10, 0.f}}) {
        INFO("rows=", c.rows, " cols=", c.cols, " offset=", c.offset);
        auto x = uniform(g, c.rows * c.cols, -5.f, 5.f);
        for (float& v : x) v += c.offset;
        const auto dy = uniform(g, c.rows * c.cols);
        const SoftmaxRef ref = naive_softmax(c.rows, c.cols, x);
        std::vector<float> y(x.size()), ly(x.size());
        cpu_backend().softmax_forward(c.rows, c.cols, x.data(), y.data());
        cpu_backend().log_softmax_forward(c.rows, c.cols, x.data(), ly.data());
        // exp/log in float carry a few ulp; x - max is exact-ish but the inputs
        // themselves are rounded at |offset| ~ 1e4 (ulp 1e-3), which we reproduce
        // in the reference, so only kernel roundings remain: 1e-5 relative for
        // probabilities; log-probs are differences of O(|x - max| + log cols)
        // terms, so 1e-5 absolute scaled by their size.
        check_close("softmax_forward", y, ref.soft, 1e-5, 1e-7);
        check_close("log_softmax_forward", ly, ref.log_soft, 1e-5, 1e-5);

        std::vector<double> dsoft(x.size()), dlog(x.size());
        for (int64_t i = 0; i < c.rows; ++i) {
            double dot = 0, sum = 0;
            for (int64_t j = 0; j < c.cols; ++j) {
                dot += dy[i * c.cols + j] * static_cast<double>(y[i * c.cols + j]);
                sum += dy[i * c.cols + j];
            }
            for (int64_t j = 0; j < c.cols; ++j) {
                const int64_t k = i * c.cols + j;
                dsoft[k] = y[k] * (dy[k] - dot);
                dlog[k] = dy[k] - std::exp(static_cast<double>(ly[k])) * sum;
            }
        }
        std::vector<float> dx(x.size(), kNaN), dlx(x.size(), kNaN);
        cpu_backend().softmax_backward(c.rows, c.cols, y.data(), dy.data(), dx.data());
        cpu_backend().log_softmax_backward(c.rows, c.cols, ly.data(), dy.data(), dlx.data());
        // Same inputs as the reference; a double dot product then 2-3 float
        // roundings on O(1) values, and a float exp (few ulp) times sum|dy| <= cols.
        check_close("softmax_backward", dx, dsoft, 1e-5, 1e-6);
        check_close("log_softmax_backward", dlx, dlog, 1e-5, 1e-6 * static_cast<double>(c.cols));
    }
}

TEST_CASE("cross-entropy forward and backward") {
    Generator g(26);
    for (int64_t cols : {1, 2, 10, 33, 1000}) {
        const int64_t rows = 37;
        INFO("cols=", cols);
        const auto x = uniform(g, rows * cols, -8.f, 8.f);
        std::vector<int32_t> labels(rows);
        for (auto& l : labels) l = static_cast<int32_t>(g.below(static_cast<uint64_t>(cols)));
        const auto dloss = uniform(g, rows);
        const SoftmaxRef ref = naive_softmax(rows, cols, x);
        std::vector<double> loss_ref(rows), grad_ref(x.size());
        for (int64_t r = 0; r < rows; ++r) {
            loss_ref[r] = -ref.log_soft[r * cols + labels[r]];
            for (int64_t j = 0; j < cols; ++j)
                grad_ref[r * cols + j] = dloss[r] * (ref.soft[r * cols + j] - (j == labels[r] ? 1.0 : 0.0));
        }
        std::vector<float> loss(rows, kNaN), probs(x.size(), kNaN), grad(x.size(), kNaN);
        cpu_backend().cross_entropy_forward(rows, cols, x.data(), labels.data(), loss.data(), probs.data());
        cpu_backend().cross_entropy_backward(rows, cols, probs.data(), labels.data(), dloss.data(), grad.data());
        // Losses are log-sum-exp differences of O(16 + log cols): few ulp of that size.
        check_close("cross_entropy loss", loss, loss_ref, 1e-5, 1e-5);
        check_close("cross_entropy probs", probs, ref.soft, 1e-5, 1e-7);
        check_close("cross_entropy grad", grad, grad_ref, 1e-5, 1e-6);
    }
}

TEST_CASE("dropout masks are 0 or 1/(1-p), reproducible, and keep about 1-p") {
    const int64_t n = 100000;
    Generator g(27);
    const auto x = uniform(g, n);
    for (float p : {0.f, 0.1f, 0.5f, 0.9f}) {
        INFO("p=", p);
        const float keep_scale = 1.f / (1.f - p);
        std::vector<float> y(n), mask(n), y2(n), mask2(n);
        cpu_backend().dropout_forward(n, p, 1234, 77, x.data(), y.data(), mask.data());
        cpu_backend().dropout_forward(n, p, 1234, 77, x.data(), y2.data(), mask2.data());
        CHECK(mask == mask2);  // same seed and offset: same mask
        CHECK(y == y2);
        int64_t kept = 0, bad = 0;
        for (int64_t i = 0; i < n; ++i) {
            bad += !(mask[i] == 0.f || mask[i] == keep_scale);
            bad += y[i] != x[i] * mask[i];
            // The documented draw: u_i = philox_uniform_at(seed, offset, i).
            bad += (philox_uniform_at(1234, 77, static_cast<uint64_t>(i)) >= p) != (mask[i] != 0.f);
            kept += mask[i] != 0.f;
        }
        CHECK(bad == 0);
        // kept ~ Binomial(n, 1-p): sd = sqrt(n p (1-p)) <= 159; a 6 sd band fails
        // with probability < 2e-9 for a fair generator.
        const double sd = std::sqrt(n * p * (1.0 - p));
        CHECK(std::fabs(static_cast<double>(kept) - n * (1.0 - p)) <= 6.0 * sd + 0.5);
        if (p == 0.f) CHECK(kept == n);
    }
    // Draw i of offset o is draw i + o of offset 0, whatever the alignment.
    std::vector<float> y(n), m_off(n), m_base(n + 5);
    std::vector<float> xb(n + 5, 1.f);
    cpu_backend().dropout_forward(n, 0.5f, 9, 5, x.data(), y.data(), m_off.data());
    cpu_backend().dropout_forward(n + 5, 0.5f, 9, 0, xb.data(), xb.data(), m_base.data());
    CHECK(std::vector<float>(m_base.begin() + 5, m_base.end()) == m_off);
    // Another seed gives another mask.
    std::vector<float> m_seed(n);
    cpu_backend().dropout_forward(n, 0.5f, 10, 5, x.data(), y.data(), m_seed.data());
    CHECK(m_seed != m_off);
}
