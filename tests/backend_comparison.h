// The backend comparison suite (in the manner of ggml's test-backend-ops):
// every primitive of kernels/backend.h runs on a backend under test and on the
// CPU backend with the same seeded random inputs, sizes included that are not
// multiples of the block (256) or GEMM tile (128) sizes, and the results are
// compared with the tolerance stated at each check:
//   exact        operations whose float steps are the CPU's, in the CPU's order
//   sum bound    sums of n terms: (n + 4) * 2^-23 * sum|terms| (Higham's bound,
//                kernel_reference.h), doubled where both results round
//   rtol/atol    transcendental functions (expf/logf/sqrtf differ by an ulp or
//                two on a GPU) and float-vs-double statistics
// The including file defines gbtest::target(): the backend and its memory.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/backend.h"
#include "kernel_reference.h"

namespace gbtest {

// The backend under test and how to reach its memory.
struct Target {
    virtual ~Target() = default;
    virtual gb::kernels::Backend& backend() = 0;
    virtual void* alloc(size_t bytes) = 0;
    virtual void release(void* p) = 0;
    virtual void upload(void* dst, const void* src, size_t bytes) = 0;
    virtual void download(void* dst, const void* src, size_t bytes) = 0;
    // Run-time algorithm choices ("cublas"/"tiled", "cudnn"/"im2col"/"implicit").
    virtual std::vector<std::string> gemm_algos() = 0;
    virtual std::vector<std::string> conv_algos() = 0;
    virtual void set_algos(const std::string& gemm, const std::string& conv) = 0;
};
Target& target();

// A buffer in the target's memory, filled from a host vector (or left as the
// allocator gives it: NaN under the emulator).
template <typename T>
class Dev {
public:
    explicit Dev(const std::vector<T>& host) : Dev(host.size()) {
        if (!host.empty()) target().upload(ptr_, host.data(), host.size() * sizeof(T));
    }
    explicit Dev(size_t n) : n_(n), ptr_(static_cast<T*>(target().alloc((n + 1) * sizeof(T)))) {}
    ~Dev() { target().release(ptr_); }
    Dev(const Dev&) = delete;
    Dev& operator=(const Dev&) = delete;
    T* p() { return ptr_; }
    std::vector<T> get() const {
        std::vector<T> out(n_);
        if (n_) target().download(out.data(), ptr_, n_ * sizeof(T));
        return out;
    }

private:
    size_t n_;
    T* ptr_;
};

inline gb::kernels::Backend& cpu() { return gb::kernels::cpu_backend(); }
inline gb::kernels::Backend& dut() { return target().backend(); }

// Bitwise equality (NaN equals NaN).
template <typename T>
void check_exact(const std::string& what, const std::vector<T>& got, const std::vector<T>& want) {
    REQUIRE(got.size() == want.size());
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < got.size(); ++i)
        if (std::memcmp(&got[i], &want[i], sizeof(T)) != 0 && !(got[i] != got[i] && want[i] != want[i])) {
            if (!bad) first = i;
            ++bad;
        }
    INFO(what << ": " << bad << " of " << got.size() << " differ; first at " << first << ": got "
              << (bad ? got[first] : T{}) << " want " << (bad ? want[first] : T{}));
    CHECK(bad == 0);
}

inline void check_rel(const std::string& what, const std::vector<float>& got, const std::vector<float>& want,
                      double rtol, double atol) {
    check_close(what, got, to_double(want), rtol, atol);
}

// Both results are sums of `terms` float products with magnitudes `mag`: each is
// within sum_bound of the exact value, so they are within twice that of each other.
inline void check_two_sums(const std::string& what, const std::vector<float>& got, const std::vector<float>& want,
                           const std::vector<float>& mag, double terms) {
    const std::vector<double> ref = to_double(want);
    check_elements(what, got, ref, [&](size_t i) { return 2.0 * sum_bound(terms, mag[i]); });
}

inline std::vector<float> absolute(std::vector<float> v) {
    for (float& x : v) x = std::fabs(x);
    return v;
}

inline std::vector<float> uniform_vec(gb::Generator& g, int64_t n, float lo = -1.f, float hi = 1.f) {
    return uniform(g, n, lo, hi);
}

}  // namespace gbtest

namespace gbtest::suite {

using namespace gb;
using namespace gb::kernels;

const int64_t kLengths[] = {1, 257, 5000};

TEST_CASE("backend: fill, copy and element-wise arithmetic (exact)") {
    Generator g(1);
    for (int64_t n : kLengths) {
        const auto a = uniform_vec(g, n), b = uniform_vec(g, n);
        std::vector<float> want(n);
        Dev<float> da(a), db(b), out(n);
        dut().fill(n, 2.5f, out.p());
        check_exact("fill", out.get(), std::vector<float>(n, 2.5f));
        dut().copy(n, da.p(), out.p());
        check_exact("copy", out.get(), a);
        dut().add(n, da.p(), db.p(), out.p());
        cpu().add(n, a.data(), b.data(), want.data());
        check_exact("add", out.get(), want);
        dut().sub(n, da.p(), db.p(), out.p());
        cpu().sub(n, a.data(), b.data(), want.data());
        check_exact("sub", out.get(), want);
        dut().mul(n, da.p(), db.p(), out.p());
        cpu().mul(n, a.data(), b.data(), want.data());
        check_exact("mul", out.get(), want);
        dut().scale(n, -1.75f, da.p(), out.p());
        cpu().scale(n, -1.75f, a.data(), want.data());
        check_exact("scale", out.get(), want);
        // y += alpha * x: a fused multiply-add on a GPU rounds once instead of twice.
        std::vector<float> y = b;
        Dev<float> dy(b);
        dut().axpy(n, 0.3f, da.p(), dy.p());
        cpu().axpy(n, 0.3f, a.data(), y.data());
        check_rel("axpy", dy.get(), y, 1e-6, 1e-7);
    }
}

TEST_CASE("backend: ReLU, clamp and the LRP helpers (exact)") {
    Generator g(2);
    const float inf = INFINITY;
    for (int64_t n : kLengths) {
        auto x = uniform_vec(g, n);
        for (int64_t i = 0; i < n; i += 7) x[i] = 0.f;
        const auto dy = uniform_vec(g, n), r = uniform_vec(g, n);
        Dev<float> dx_(x), ddy(dy), dr(r), out(n);
        std::vector<float> want(n);
        dut().relu_forward(n, dx_.p(), out.p());
        cpu().relu_forward(n, x.data(), want.data());
        check_exact("relu", out.get(), want);
        dut().relu_backward(n, dx_.p(), ddy.p(), out.p());
        cpu().relu_backward(n, x.data(), dy.data(), want.data());
        check_exact("relu_backward", out.get(), want);
        for (auto [lo, hi] : {std::pair{0.f, inf}, std::pair{-inf, 0.f}, std::pair{-0.25f, 0.5f}}) {
            dut().clamp(n, lo, hi, dx_.p(), out.p());
            cpu().clamp(n, lo, hi, x.data(), want.data());
            check_exact("clamp", out.get(), want);
        }
        for (float eps : {0.f, 1e-2f}) {
            dut().lrp_divide(n, eps, dr.p(), dx_.p(), out.p());
            cpu().lrp_divide(n, eps, r.data(), x.data(), want.data());
            check_exact("lrp_divide", out.get(), want);
        }
        for (int sign : {1, -1}) {
            dut().lrp_mask_sign(n, sign, dx_.p(), dr.p(), out.p());
            cpu().lrp_mask_sign(n, sign, x.data(), r.data(), want.data());
            check_exact("lrp_mask_sign", out.get(), want);
        }
    }
}

TEST_CASE("backend: bias add (exact) and bias gradient (sum bound)") {
    Generator g(3);
    struct S {
        int64_t outer, channels, inner;
    };
    for (S s : {S{1, 1, 1}, S{2, 3, 37}, S{3, 5, 300}, S{70, 2, 1}}) {
        const int64_t n = s.outer * s.channels * s.inner;
        const auto bias = uniform_vec(g, s.channels), y0 = uniform_vec(g, n);
        std::vector<float> y = y0, db(s.channels);
        Dev<float> dbias(bias), dy(y0), ddb(s.channels);
        dut().bias_add(s.outer, s.channels, s.inner, dbias.p(), dy.p());
        cpu().bias_add(s.outer, s.channels, s.inner, bias.data(), y.data());
        check_exact("bias_add", dy.get(), y);
        dut().bias_grad(s.outer, s.channels, s.inner, dy.p(), ddb.p());
        cpu().bias_grad(s.outer, s.channels, s.inner, y.data(), db.data());
        std::vector<float> mag(s.channels);
        const auto ay = absolute(y);
        cpu().bias_grad(s.outer, s.channels, s.inner, ay.data(), mag.data());
        check_two_sums("bias_grad", ddb.get(), db, mag, static_cast<double>(s.outer * s.inner));
    }
}

TEST_CASE("backend: sum over an axis (sum bound) and its broadcast (exact)") {
    Generator g(4);
    struct S {
        int64_t outer, reduce, inner;
    };
    // The last two take the CUDA backend's split path (a few outputs over a long axis).
    for (S s : {S{1, 5, 1}, S{3, 1000, 1}, S{2, 37, 5}, S{4, 3, 1700}, S{5, 1, 3}, S{2, 100000, 1}, S{1, 70000, 3}}) {
        const auto x = uniform_vec(g, s.outer * s.reduce * s.inner);
        std::vector<float> want(s.outer * s.inner), mag(s.outer * s.inner);
        Dev<float> dx(x), out(s.outer * s.inner);
        dut().sum_dim(s.outer, s.reduce, s.inner, dx.p(), out.p());
        cpu().sum_dim(s.outer, s.reduce, s.inner, x.data(), want.data());
        const auto ax = absolute(x);
        cpu().sum_dim(s.outer, s.reduce, s.inner, ax.data(), mag.data());
        check_two_sums("sum_dim", out.get(), want, mag, static_cast<double>(s.reduce));

        std::vector<float> back(x.size());
        Dev<float> dback(x.size());
        dut().broadcast_dim(s.outer, s.reduce, s.inner, 0.5f, out.p(), dback.p());
        cpu().broadcast_dim(s.outer, s.reduce, s.inner, 0.5f, out.get().data(), back.data());
        check_exact("broadcast_dim", dback.get(), back);
    }
}

TEST_CASE("backend: softmax, log-softmax and cross-entropy (rtol 1e-5)") {
    Generator g(5);
    for (int64_t cols : {1, 10, 300, 8200}) {  // 8200: past the shared-memory row cache
        const int64_t rows = 5, n = rows * cols;
        const auto x = uniform_vec(g, n, -8.f, 8.f), dy = uniform_vec(g, n);
        std::vector<int32_t> labels(rows);
        for (int64_t r = 0; r < rows; ++r) labels[r] = static_cast<int32_t>((r * 7) % cols);
        Dev<float> dx_(x), ddy(dy), y(n), grad(n), loss(rows), dloss_dev(std::vector<float>(rows, 0.7f));
        Dev<int32_t> dl(labels);
        std::vector<float> want(n), want_grad(n), want_loss(rows), dloss(rows, 0.7f);

        dut().softmax_forward(rows, cols, dx_.p(), y.p());
        cpu().softmax_forward(rows, cols, x.data(), want.data());
        check_rel("softmax", y.get(), want, 1e-5, 1e-7);
        dut().softmax_backward(rows, cols, y.p(), ddy.p(), grad.p());
        cpu().softmax_backward(rows, cols, want.data(), dy.data(), want_grad.data());
        check_rel("softmax_backward", grad.get(), want_grad, 1e-4, 1e-6);

        dut().log_softmax_forward(rows, cols, dx_.p(), y.p());
        cpu().log_softmax_forward(rows, cols, x.data(), want.data());
        check_rel("log_softmax", y.get(), want, 1e-5, 1e-5);
        dut().log_softmax_backward(rows, cols, y.p(), ddy.p(), grad.p());
        cpu().log_softmax_backward(rows, cols, want.data(), dy.data(), want_grad.data());
        check_rel("log_softmax_backward", grad.get(), want_grad, 1e-4, 1e-5);

        dut().cross_entropy_forward(rows, cols, dx_.p(), dl.p(), loss.p(), y.p());
        cpu().cross_entropy_forward(rows, cols, x.data(), labels.data(), want_loss.data(), want.data());
        check_rel("cross_entropy loss", loss.get(), want_loss, 1e-5, 1e-5);
        check_rel("cross_entropy probs", y.get(), want, 1e-5, 1e-7);
        dut().cross_entropy_backward(rows, cols, y.p(), dl.p(), dloss_dev.p(), grad.p());
        cpu().cross_entropy_backward(rows, cols, want.data(), labels.data(), dloss.data(), want_grad.data());
        check_rel("cross_entropy_backward", grad.get(), want_grad, 1e-5, 1e-6);
    }
}

TEST_CASE("backend: max and average pooling, forward and backward (exact)") {
    Generator g(6);
    struct S {
        int64_t N, C, H, W, k, stride, pad;
    };
    for (S s : {S{1, 1, 1, 1, 1, 1, 0}, S{2, 3, 7, 9, 2, 2, 0}, S{1, 2, 6, 5, 3, 1, 1}, S{2, 2, 11, 10, 3, 2, 1}}) {
        for (bool include_pad : {true, false}) {
            const Pool2dGeom pg = make_pool2d_geom(s.N, s.C, s.H, s.W, s.k, s.k, s.stride, s.stride, s.pad, s.pad,
                                                   include_pad);
            auto x = uniform_vec(g, pg.x_numel());
            if (x.size() > 4) x[3] = x[4];  // a tie: the first maximum wins
            const auto dy = uniform_vec(g, pg.y_numel());
            Dev<float> dx_(x), ddy(dy), y(pg.y_numel()), dx(pg.x_numel());
            Dev<int32_t> idx(pg.y_numel());
            std::vector<float> want_y(pg.y_numel()), want_dx(pg.x_numel());
            std::vector<int32_t> want_idx(pg.y_numel());

            dut().maxpool2d_forward(pg, dx_.p(), y.p(), idx.p());
            cpu().maxpool2d_forward(pg, x.data(), want_y.data(), want_idx.data());
            check_exact("maxpool y", y.get(), want_y);
            check_exact("maxpool indices", idx.get(), want_idx);
            dut().maxpool2d_backward(pg, ddy.p(), idx.p(), dx.p());
            cpu().maxpool2d_backward(pg, dy.data(), want_idx.data(), want_dx.data());
            check_exact("maxpool dx", dx.get(), want_dx);

            dut().avgpool2d_forward(pg, dx_.p(), y.p());
            cpu().avgpool2d_forward(pg, x.data(), want_y.data());
            check_exact("avgpool y", y.get(), want_y);
            dut().avgpool2d_backward(pg, ddy.p(), dx.p());
            cpu().avgpool2d_backward(pg, dy.data(), want_dx.data());
            check_exact("avgpool dx", dx.get(), want_dx);
        }
    }
}

TEST_CASE("backend: adaptive average pooling (exact)") {
    Generator g(7);
    struct S {
        int64_t planes, H, W, P, Q;
    };
    for (S s : {S{3, 7, 9, 3, 4}, S{2, 5, 5, 5, 5}, S{1, 4, 3, 7, 5}, S{4, 6, 6, 1, 1}}) {
        const auto x = uniform_vec(g, s.planes * s.H * s.W), dy = uniform_vec(g, s.planes * s.P * s.Q);
        Dev<float> dx_(x), ddy(dy), y(dy.size()), dx(x.size());
        std::vector<float> want_y(dy.size()), want_dx(x.size());
        dut().adaptive_avgpool2d_forward(s.planes, s.H, s.W, s.P, s.Q, dx_.p(), y.p());
        cpu().adaptive_avgpool2d_forward(s.planes, s.H, s.W, s.P, s.Q, x.data(), want_y.data());
        check_exact("adaptive avgpool y", y.get(), want_y);
        dut().adaptive_avgpool2d_backward(s.planes, s.H, s.W, s.P, s.Q, ddy.p(), dx.p());
        cpu().adaptive_avgpool2d_backward(s.planes, s.H, s.W, s.P, s.Q, dy.data(), want_dx.data());
        check_exact("adaptive avgpool dx", dx.get(), want_dx);
    }
}

TEST_CASE("backend: batch normalisation, train / eval / backward (rtol 1e-4: float vs double statistics)") {
    Generator g(8);
    struct S {
        int64_t N, C, HW;
    };
    for (S s : {S{1, 1, 1}, S{3, 4, 37}, S{2, 3, 300}}) {
        const int64_t n = s.N * s.C * s.HW;
        const auto x = uniform_vec(g, n, -2.f, 3.f), dy = uniform_vec(g, n), gamma = uniform_vec(g, s.C, 0.5f, 1.5f),
                   beta = uniform_vec(g, s.C), rm0 = uniform_vec(g, s.C), rv0 = uniform_vec(g, s.C, 0.5f, 2.f);
        for (bool affine : {true, false}) {
            Dev<float> dx_(x), ddy(dy), dg(gamma), dbeta(beta), rm(rm0), rv(rv0), y(n), mean(s.C), invstd(s.C),
                dx(n), dgamma(s.C), ddbeta(s.C);
            std::vector<float> crm = rm0, crv = rv0, cy(n), cmean(s.C), cinv(s.C), cdx(n), cdg(s.C), cdb(s.C);
            const float* gp = affine ? dg.p() : nullptr;
            const float* bp = affine ? dbeta.p() : nullptr;
            dut().batchnorm_forward_train(s.N, s.C, s.HW, dx_.p(), gp, bp, 1e-5f, 0.1f, rm.p(), rv.p(), y.p(),
                                          mean.p(), invstd.p());
            cpu().batchnorm_forward_train(s.N, s.C, s.HW, x.data(), affine ? gamma.data() : nullptr,
                                          affine ? beta.data() : nullptr, 1e-5f, 0.1f, crm.data(), crv.data(),
                                          cy.data(), cmean.data(), cinv.data());
            check_rel("bn train y", y.get(), cy, 1e-4, 1e-4);
            check_rel("bn mean", mean.get(), cmean, 1e-4, 1e-6);
            check_rel("bn invstd", invstd.get(), cinv, 1e-4, 1e-6);
            check_rel("bn running mean", rm.get(), crm, 1e-4, 1e-6);
            check_rel("bn running var", rv.get(), crv, 1e-4, 1e-6);
            for (bool training : {true, false}) {
                dut().batchnorm_backward(s.N, s.C, s.HW, dx_.p(), ddy.p(), gp, mean.p(), invstd.p(), training, dx.p(),
                                         dgamma.p(), ddbeta.p());
                cpu().batchnorm_backward(s.N, s.C, s.HW, x.data(), dy.data(), affine ? gamma.data() : nullptr,
                                         cmean.data(), cinv.data(), training, cdx.data(), cdg.data(), cdb.data());
                check_rel("bn dx", dx.get(), cdx, 1e-3, 1e-4);
                check_rel("bn dgamma", dgamma.get(), cdg, 1e-4, 1e-4);
                check_rel("bn dbeta", ddbeta.get(), cdb, 1e-4, 1e-4);
            }
            dut().batchnorm_forward_eval(s.N, s.C, s.HW, dx_.p(), gp, bp, rm.p(), rv.p(), 1e-5f, y.p());
            cpu().batchnorm_forward_eval(s.N, s.C, s.HW, x.data(), affine ? gamma.data() : nullptr,
                                         affine ? beta.data() : nullptr, crm.data(), crv.data(), 1e-5f, cy.data());
            check_rel("bn eval y", y.get(), cy, 1e-4, 1e-5);
        }
    }
}

TEST_CASE("backend: dropout draws the CPU backend's Philox mask (exact)") {
    Generator g(9);
    for (int64_t n : kLengths) {
        const auto x = uniform_vec(g, n);
        for (float p : {0.f, 0.3f, 0.9f}) {
            Dev<float> dx_(x), y(n), mask(n);
            std::vector<float> cy(n), cmask(n);
            dut().dropout_forward(n, p, 1234, 7, dx_.p(), y.p(), mask.p());
            cpu().dropout_forward(n, p, 1234, 7, x.data(), cy.data(), cmask.data());
            check_exact("dropout mask", mask.get(), cmask);
            check_exact("dropout y", y.get(), cy);
        }
    }
}

TEST_CASE("backend: SGD and Adam steps (rtol 1e-6: fused multiply-adds)") {
    Generator g(10);
    const int64_t n = 1000;
    const auto p0 = uniform_vec(g, n), grad = uniform_vec(g, n);
    for (SgdParams o : {SgdParams{0.1f, 0.f, 0.f, 0.f, false}, SgdParams{0.1f, 0.9f, 0.1f, 1e-2f, false},
                        SgdParams{0.05f, 0.9f, 0.f, 0.f, true}}) {
        std::vector<float> p = p0, buf(n, 0.f);
        Dev<float> dp(p0), dg(grad), dbuf(buf);
        for (int t = 1; t <= 3; ++t) {
            dut().sgd_step(n, o, t == 1, dp.p(), dg.p(), o.momentum != 0.f ? dbuf.p() : nullptr);
            cpu().sgd_step(n, o, t == 1, p.data(), grad.data(), o.momentum != 0.f ? buf.data() : nullptr);
        }
        check_rel("sgd param", dp.get(), p, 1e-6, 1e-7);
        check_rel("sgd momentum", dbuf.get(), buf, 1e-6, 1e-7);
    }
    for (AdamParams o : {AdamParams{}, AdamParams{1e-2f, 0.8f, 0.99f, 1e-6f, 0.1f, false},
                         AdamParams{1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, true}}) {
        std::vector<float> p = p0, m(n, 0.f), v(n, 0.f);
        Dev<float> dp(p0), dg(grad), dm(m), dv(v);
        for (int t = 1; t <= 3; ++t) {
            dut().adam_step(n, o, t, dp.p(), dg.p(), dm.p(), dv.p());
            cpu().adam_step(n, o, t, p.data(), grad.data(), m.data(), v.data());
        }
        check_rel("adam param", dp.get(), p, 1e-6, 1e-7);
        check_rel("adam m", dm.get(), m, 1e-6, 1e-8);
        check_rel("adam v", dv.get(), v, 1e-6, 1e-9);
    }
}

TEST_CASE("backend: bilinear resize (forward rtol 1e-6; backward atol 1e-5, atomics reorder sums)") {
    Generator g(11);
    struct S {
        int64_t planes, H, W, OH, OW;
    };
    for (S s : {S{3, 5, 7, 11, 13}, S{2, 13, 9, 4, 5}, S{1, 1, 1, 3, 2}}) {
        for (bool align : {false, true}) {
            const auto x = uniform_vec(g, s.planes * s.H * s.W), dy = uniform_vec(g, s.planes * s.OH * s.OW);
            Dev<float> dx_(x), ddy(dy), y(dy.size()), dx(x.size());
            std::vector<float> cy(dy.size()), cdx(x.size());
            dut().resize_bilinear_forward(s.planes, s.H, s.W, s.OH, s.OW, align, dx_.p(), y.p());
            cpu().resize_bilinear_forward(s.planes, s.H, s.W, s.OH, s.OW, align, x.data(), cy.data());
            check_rel("resize y", y.get(), cy, 1e-6, 1e-6);
            dut().resize_bilinear_backward(s.planes, s.H, s.W, s.OH, s.OW, align, ddy.p(), dx.p());
            cpu().resize_bilinear_backward(s.planes, s.H, s.W, s.OH, s.OW, align, dy.data(), cdx.data());
            check_rel("resize dx", dx.get(), cdx, 1e-5, 1e-5);
        }
    }
}

struct GemmCase {
    bool ta, tb;
    int64_t M, N, K, pad;  // pad: extra elements per row, breaking float4 alignment when odd
    float alpha, beta;
};

TEST_CASE("backend: GEMM by every algorithm, all transposes, ragged sizes (twice the sum bound)") {
    Generator g(12);
    const GemmCase cases[] = {{false, false, 1, 1, 1, 0, 1.f, 0.f},      {false, false, 5, 7, 3, 0, 1.f, 0.f},
                              {true, false, 129, 130, 17, 0, 1.5f, 0.f}, {false, true, 64, 200, 9, 3, 1.f, 0.5f},
                              {true, true, 33, 140, 40, 1, -1.f, 1.f},   {false, false, 130, 3, 260, 4, 1.f, 0.f},
                              {false, true, 7, 9, 0, 0, 1.f, 0.5f}};
    for (const std::string& algo : target().gemm_algos()) {
        target().set_algos(algo, target().conv_algos().front());
        for (const GemmCase& c : cases) {
            CAPTURE(algo);
            CAPTURE(c.M);
            CAPTURE(c.N);
            CAPTURE(c.K);
            const int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
            const int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
            const int64_t lda = a_cols + c.pad, ldb = b_cols + c.pad, ldc = c.N + c.pad;
            const auto A = uniform_vec(g, std::max<int64_t>(a_rows * lda, 1));
            const auto B = uniform_vec(g, std::max<int64_t>(b_rows * ldb, 1));
            const auto C0 = uniform_vec(g, c.M * ldc);
            std::vector<float> C = C0, mag(C0.size(), 0.f);
            Dev<float> dA(A), dB(B), dC(C0);
            dut().gemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, dA.p(), lda, dB.p(), ldb, c.beta, dC.p(), ldc);
            cpu().gemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);
            const auto aA = absolute(A), aB = absolute(B), aC = absolute(C0);
            cpu().gemm(c.ta, c.tb, c.M, c.N, c.K, std::fabs(c.alpha), aA.data(), lda, aB.data(), ldb,
                       std::fabs(c.beta), (mag = aC).data(), ldc);
            check_two_sums("gemm " + algo, dC.get(), C, mag, static_cast<double>(c.K + 1));
        }
    }
}

struct ConvCase {
    int64_t N, C, H, W, K, R, S, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
};

TEST_CASE("backend: convolution by every algorithm, forward and both backwards (twice the sum bound)") {
    Generator g(13);
    const ConvCase cases[] = {{2, 3, 9, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1},
                              {1, 2, 8, 8, 3, 3, 2, 2, 2, 1, 0, 1, 2},
                              {2, 4, 5, 5, 6, 1, 1, 1, 1, 0, 0, 1, 1},
                              {3, 2, 6, 7, 130, 3, 3, 2, 1, 0, 1, 1, 1},
                              {2, 2, 32, 32, 4, 3, 3, 1, 1, 1, 1, 1, 1}};  // implicit backward-weight splits K in 4
    for (const std::string& gemm : target().gemm_algos())
        for (const std::string& conv : target().conv_algos()) {
            if (conv != "im2col" && gemm != target().gemm_algos().front()) continue;  // only im2col uses the GEMM
            target().set_algos(gemm, conv);
            for (const ConvCase& c : cases) {
                CAPTURE(gemm);
                CAPTURE(conv);
                CAPTURE(c.K);
                const Conv2dGeom cg = make_conv2d_geom(c.N, c.C, c.H, c.W, c.K, c.R, c.S, c.stride_h, c.stride_w,
                                                       c.pad_h, c.pad_w, c.dil_h, c.dil_w);
                const auto x = uniform_vec(g, cg.x_numel()), w = uniform_vec(g, cg.w_numel()),
                           bias = uniform_vec(g, cg.K), dy = uniform_vec(g, cg.y_numel());
                const auto ax = absolute(x), aw = absolute(w), ady = absolute(dy), abias = absolute(bias);
                Dev<float> dx_(x), dw_(w), dbias(bias), ddy(dy), y(cg.y_numel()), dx(cg.x_numel()),
                    dw(cg.w_numel()), db(cg.K);
                std::vector<float> cy(cg.y_numel()), cdx(cg.x_numel()), cdw(cg.w_numel()), cdb(cg.K);
                std::vector<float> my(cy.size()), mdx(cdx.size()), mdw(cdw.size()), mdb(cdb.size());

                dut().conv2d_forward(cg, dx_.p(), dw_.p(), dbias.p(), y.p());
                cpu().conv2d_forward(cg, x.data(), w.data(), bias.data(), cy.data());
                cpu().conv2d_forward(cg, ax.data(), aw.data(), abias.data(), my.data());
                check_two_sums("conv forward", y.get(), cy, my, static_cast<double>(c.C * c.R * c.S + 1));

                dut().conv2d_backward_data(cg, ddy.p(), dw_.p(), dx.p());
                cpu().conv2d_backward_data(cg, dy.data(), w.data(), cdx.data());
                cpu().conv2d_backward_data(cg, ady.data(), aw.data(), mdx.data());
                check_two_sums("conv backward data", dx.get(), cdx, mdx, static_cast<double>(c.K * c.R * c.S));

                dut().conv2d_backward_weight(cg, dx_.p(), ddy.p(), dw.p(), db.p());
                cpu().conv2d_backward_weight(cg, x.data(), dy.data(), cdw.data(), cdb.data());
                cpu().conv2d_backward_weight(cg, ax.data(), ady.data(), mdw.data(), mdb.data());
                check_two_sums("conv backward weight", dw.get(), cdw, mdw, static_cast<double>(cg.N * cg.P * cg.Q));
                check_two_sums("conv backward bias", db.get(), cdb, mdb, static_cast<double>(cg.N * cg.P * cg.Q));
            }
        }
}

// ---- gradient family and model-level methods ----------------------------------------------------------

TEST_CASE("backend: row min/max and roll2d against naive loops (exact), normal noise as Generator draws it") {
    Generator g(21);
    struct S {
        int64_t rows, cols;
    };
    for (S s : {S{1, 1}, S{3, 257}, S{5, 5000}, S{300, 7}}) {
        const auto x = uniform_vec(g, s.rows * s.cols, -3.f, 2.f);
        std::vector<float> want_lo(s.rows), want_hi(s.rows), lo(s.rows), hi(s.rows);
        for (int64_t r = 0; r < s.rows; ++r) {
            want_lo[r] = want_hi[r] = x[r * s.cols];
            for (int64_t j = 0; j < s.cols; ++j) {
                want_lo[r] = std::min(want_lo[r], x[r * s.cols + j]);
                want_hi[r] = std::max(want_hi[r], x[r * s.cols + j]);
            }
        }
        cpu().row_min_max(s.rows, s.cols, x.data(), lo.data(), hi.data());
        check_exact("cpu row min", lo, want_lo);
        check_exact("cpu row max", hi, want_hi);
        Dev<float> dx_(x), dlo(s.rows), dhi(s.rows);
        dut().row_min_max(s.rows, s.cols, dx_.p(), dlo.p(), dhi.p());
        check_exact("row min", dlo.get(), want_lo);
        check_exact("row max", dhi.get(), want_hi);

        // Noise: the CPU backend adds exactly the numbers Generator::normal(0, stddev[r]) returns from the
        // same (seed, offset), in row-major order; offsets not a multiple of 4 start mid Philox block.
        const auto stddev = uniform_vec(g, s.rows, 0.f, 2.f);
        for (uint64_t offset : {uint64_t{0}, uint64_t{5}}) {
            Generator gen(77);
            gen.set_state(77, offset);
            std::vector<float> want = x, got = x;
            for (int64_t i = 0; i < s.rows * s.cols; ++i) want[i] += gen.normal(0.f, stddev[i / s.cols]);
            CHECK(gen.offset() == offset + 2 * static_cast<uint64_t>(s.rows * s.cols));
            cpu().add_normal_noise(s.rows, s.cols, 77, offset, stddev.data(), got.data());
            check_exact("cpu normal noise", got, want);
            Dev<float> dy(x), dstd(stddev);
            dut().add_normal_noise(s.rows, s.cols, 77, offset, dstd.p(), dy.p());
#ifdef GB_CUDA_EMULATED
            check_exact("normal noise", dy.get(), want);  // the host's logf/cosf: bit for bit
#else
            // The same Philox words; CUDA's logf/cosf are within 1-2 ulp of the host's.
            check_rel("normal noise", dy.get(), want, 1e-6, 1e-6);
#endif
        }
    }
    struct R {
        int64_t planes, H, W, dy, dx;
    };
    for (R r : {R{1, 1, 1, 3, -2}, R{3, 5, 7, 1, -1}, R{2, 28, 28, -30, 57}, R{4, 4, 9, 0, 9}}) {
        const auto x = uniform_vec(g, r.planes * r.H * r.W);
        std::vector<float> want(x.size()), got(x.size());
        for (int64_t p = 0; p < r.planes; ++p)
            for (int64_t y = 0; y < r.H; ++y)
                for (int64_t c = 0; c < r.W; ++c) {
                    const int64_t ty = ((y + r.dy) % r.H + r.H) % r.H, tc = ((c + r.dx) % r.W + r.W) % r.W;
                    want[(p * r.H + ty) * r.W + tc] = x[(p * r.H + y) * r.W + c];
                }
        cpu().roll2d(r.planes, r.H, r.W, r.dy, r.dx, x.data(), got.data());
        check_exact("cpu roll2d", got, want);
        Dev<float> dx_(x), out(x.size());
        dut().roll2d(r.planes, r.H, r.W, r.dy, r.dx, dx_.p(), out.p());
        check_exact("roll2d", out.get(), want);
    }
}

}  // namespace gbtest::suite
