// CPU backend: batch normalisation (train / eval forward, both backwards) and
// the SGD / Adam / AdamW steps against naive double-precision transcriptions
// of PyTorch's definitions written here.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

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

struct BnShape {
    int64_t N, C, HW;
    float offset;  // added to x: batch statistics must not cancel catastrophically
    int64_t at(int64_t n, int64_t c, int64_t i) const { return (n * C + c) * HW + i; }
    int64_t M() const { return N * HW; }
};

// Batch statistics in double: mean and biased variance per channel.
void naive_stats(const BnShape& s, const std::vector<float>& x, std::vector<double>& mean, std::vector<double>& var) {
    mean.assign(s.C, 0.0);
    var.assign(s.C, 0.0);
    for (int64_t c = 0; c < s.C; ++c) {
        for (int64_t n = 0; n < s.N; ++n)
            for (int64_t i = 0; i < s.HW; ++i) mean[c] += x[s.at(n, c, i)];
        mean[c] /= static_cast<double>(s.M());
        for (int64_t n = 0; n < s.N; ++n)
            for (int64_t i = 0; i < s.HW; ++i) var[c] += std::pow(x[s.at(n, c, i)] - mean[c], 2);
        var[c] /= static_cast<double>(s.M());
    }
}

// y = (x - mean) * invstd * gamma + beta.
std::vector<double> naive_normalize(const BnShape& s, const std::vector<double>& x, const std::vector<double>& mean,
                                    const std::vector<double>& invstd, const std::vector<float>& gamma,
                                    const std::vector<float>& beta) {
    std::vector<double> y(x.size());
    for (int64_t n = 0; n < s.N; ++n)
        for (int64_t c = 0; c < s.C; ++c)
            for (int64_t i = 0; i < s.HW; ++i)
                y[s.at(n, c, i)] = (x[s.at(n, c, i)] - mean[c]) * invstd[c] * gamma[c] + beta[c];
    return y;
}

// Training-mode forward in double, as a function of x (for finite differences).
std::vector<double> naive_train_forward(const BnShape& s, const std::vector<double>& x, double eps,
                                        const std::vector<float>& gamma, const std::vector<float>& beta) {
    std::vector<double> mean(s.C, 0.0), invstd(s.C, 0.0);
    for (int64_t c = 0; c < s.C; ++c) {
        double m = 0, v = 0;
        for (int64_t n = 0; n < s.N; ++n)
            for (int64_t i = 0; i < s.HW; ++i) m += x[s.at(n, c, i)];
        m /= static_cast<double>(s.M());
        for (int64_t n = 0; n < s.N; ++n)
            for (int64_t i = 0; i < s.HW; ++i) v += std::pow(x[s.at(n, c, i)] - m, 2);
        mean[c] = m;
        invstd[c] = 1.0 / std::sqrt(v / static_cast<double>(s.M()) + eps);
    }
    return naive_normalize(s, x, mean, invstd, gamma, beta);
}

struct BnGrads {
    std::vector<double> dx, dgamma, dbeta, mag;  // mag: sum |dy * xhat| per channel
};

// Backward with statistics `mean`, `invstd` (the kernel's saved floats):
// training: dx = gamma*invstd/M * (M*dy - sum(dy) - xhat*sum(dy*xhat)); eval: dx = gamma*invstd*dy.
BnGrads naive_backward(const BnShape& s, const std::vector<float>& x, const std::vector<float>& dy,
                       const std::vector<float>& gamma, const std::vector<float>& mean,
                       const std::vector<float>& invstd, bool training) {
    BnGrads g{std::vector<double>(x.size()), std::vector<double>(s.C, 0.0), std::vector<double>(s.C, 0.0),
              std::vector<double>(s.C, 0.0)};
    const double M = static_cast<double>(s.M());
    for (int64_t c = 0; c < s.C; ++c) {
        for (int64_t n = 0; n < s.N; ++n)
            for (int64_t i = 0; i < s.HW; ++i) {
                const double xhat = (x[s.at(n, c, i)] - static_cast<double>(mean[c])) * invstd[c];
                g.dgamma[c] += dy[s.at(n, c, i)] * xhat;
                g.dbeta[c] += dy[s.at(n, c, i)];
                g.mag[c] += std::fabs(dy[s.at(n, c, i)] * xhat);
            }
        for (int64_t n = 0; n < s.N; ++n)
            for (int64_t i = 0; i < s.HW; ++i) {
                const double xhat = (x[s.at(n, c, i)] - static_cast<double>(mean[c])) * invstd[c];
                const double k = static_cast<double>(gamma[c]) * invstd[c];
                const double d = dy[s.at(n, c, i)];
                g.dx[s.at(n, c, i)] = training ? k / M * (M * d - g.dbeta[c] - xhat * g.dgamma[c]) : k * d;
            }
    }
    return g;
}

const BnShape kBnShapes[] = {{1, 1, 2, 0.f},   {2, 3, 49, 0.f},   {4, 16, 1, 0.f},  {3, 5, 221, 0.f},
                             {8, 33, 65, 0.f}, {16, 4, 1024, 0.f}, {2, 3, 31, 50.f}, {5, 2, 7, -20.f}};

}  // namespace

TEST_CASE("batchnorm training forward: output, saved statistics, running statistics") {
    Generator g(30);
    const float eps = 1e-5f, momentum = 0.1f;
    for (const BnShape& s : kBnShapes) {
        INFO("N=", s.N, " C=", s.C, " HW=", s.HW, " offset=", s.offset);
        auto x = uniform(g, s.N * s.C * s.HW);
        for (float& v : x) v += s.offset;
        const auto gamma = uniform(g, s.C, 0.5f, 1.5f), beta = uniform(g, s.C);
        const auto rm0 = uniform(g, s.C), rv0 = uniform(g, s.C, 0.5f, 2.f);
        std::vector<double> mean, var;
        naive_stats(s, x, mean, var);
        std::vector<double> invstd(s.C), rm(s.C), rv(s.C);
        for (int64_t c = 0; c < s.C; ++c) {
            invstd[c] = 1.0 / std::sqrt(var[c] + eps);
            // PyTorch: running = (1 - momentum) * running + momentum * batch, unbiased variance.
            rm[c] = (1.0 - momentum) * rm0[c] + momentum * mean[c];
            rv[c] = (1.0 - momentum) * rv0[c] + momentum * var[c] * s.M() / (s.M() - 1.0);
        }
        const auto yref = naive_normalize(s, to_double(x), mean, invstd, gamma, beta);

        std::vector<float> y(x.size(), kNaN), sm(s.C, kNaN), si(s.C, kNaN), rmk = rm0, rvk = rv0;
        cpu_backend().batchnorm_forward_train(s.N, s.C, s.HW, x.data(), gamma.data(), beta.data(), eps, momentum,
                                              rmk.data(), rvk.data(), y.data(), sm.data(), si.data());
        // Statistics are double sums rounded once to float, then a float sqrt and
        // division for invstd, a float blend for the running stats: a few ulp.
        check_close("save_mean", sm, mean, 1e-6, 1e-7);
        check_close("save_invstd", si, invstd, 2e-6, 0.0);
        check_close("running_mean", rmk, rm, 2e-6, 1e-7);
        check_close("running_var", rvk, rv, 2e-6, 0.0);
        // y: (x - mean) loses the offset's ulp (2^-24 * |offset|) times invstd*gamma
        // (< 2 * 1.5), plus a few roundings of O(|y|).
        check_close("batchnorm y", y, yref, 1e-5, 1e-5 + 4e-7 * std::fabs(s.offset) * 3.0);
    }
}

TEST_CASE("batchnorm eval forward uses the running statistics; affine-free defaults") {
    Generator g(31);
    const float eps = 1e-3f;
    for (const BnShape& s : kBnShapes) {
        INFO("N=", s.N, " C=", s.C, " HW=", s.HW);
        const auto x = uniform(g, s.N * s.C * s.HW);
        const auto gamma = uniform(g, s.C, 0.5f, 1.5f), beta = uniform(g, s.C);
        const auto rm = uniform(g, s.C), rv = uniform(g, s.C, 0.5f, 2.f);
        std::vector<double> mean(s.C), invstd(s.C);
        for (int64_t c = 0; c < s.C; ++c) {
            mean[c] = rm[c];
            invstd[c] = 1.0 / std::sqrt(static_cast<double>(rv[c]) + eps);
        }
        std::vector<float> y(x.size(), kNaN), y_plain(x.size(), kNaN);
        cpu_backend().batchnorm_forward_eval(s.N, s.C, s.HW, x.data(), gamma.data(), beta.data(), rm.data(),
                                             rv.data(), eps, y.data());
        // A handful of float roundings on values of O(|x - mean| * invstd * gamma) <= 5.
        check_close("batchnorm eval y", y, naive_normalize(s, to_double(x), mean, invstd, gamma, beta), 1e-5, 1e-5);
        cpu_backend().batchnorm_forward_eval(s.N, s.C, s.HW, x.data(), nullptr, nullptr, rm.data(), rv.data(), eps,
                                             y_plain.data());
        const std::vector<float> ones(s.C, 1.f), zeros(s.C, 0.f);
        const auto plain_ref = naive_normalize(s, to_double(x), mean, invstd, ones, zeros);
        check_close("batchnorm eval y (no affine)", y_plain, plain_ref, 1e-5, 1e-5);
    }
}

TEST_CASE("batchnorm backward, training (through the batch statistics) and eval") {
    Generator g(32);
    const float eps = 1e-5f;
    for (const BnShape& s : kBnShapes) {
        INFO("N=", s.N, " C=", s.C, " HW=", s.HW);
        const auto x = uniform(g, s.N * s.C * s.HW), dy = uniform(g, s.N * s.C * s.HW);
        const auto gamma = uniform(g, s.C, 0.5f, 1.5f), beta = uniform(g, s.C);
        std::vector<float> y(x.size()), mean(s.C), invstd(s.C), rm(s.C, 0.f), rv(s.C, 1.f);
        cpu_backend().batchnorm_forward_train(s.N, s.C, s.HW, x.data(), gamma.data(), beta.data(), eps, 0.1f,
                                              rm.data(), rv.data(), y.data(), mean.data(), invstd.data());
        for (bool training : {true, false}) {
            INFO("training=", training);
            const BnGrads ref = naive_backward(s, x, dy, gamma, mean, invstd, training);
            std::vector<float> dx(x.size(), kNaN), dgamma(s.C, kNaN), dbeta(s.C, kNaN);
            cpu_backend().batchnorm_backward(s.N, s.C, s.HW, x.data(), dy.data(), gamma.data(), mean.data(),
                                             invstd.data(), training, dx.data(), dgamma.data(), dbeta.data());
            // dgamma, dbeta: double sums of float xhat (2 roundings each) rounded once.
            check_sums("dgamma", dgamma, ref.dgamma, ref.mag, 2.0);
            std::vector<double> dbeta_mag(s.C, 0.0);
            for (int64_t i = 0; i < static_cast<int64_t>(dy.size()); ++i)
                dbeta_mag[(i / s.HW) % s.C] += std::fabs(dy[i]);
            check_sums("dbeta", dbeta, ref.dbeta, dbeta_mag, 1.0);
            // dx: k * (dy - mean(dy) - xhat * mean(dy xhat)) in float; the bracket
            // cancels terms of O(1), k = gamma * invstd <= 1.5 * ~2: 3e-5 absolute.
            check_close("dx", dx, ref.dx, 1e-5, 3e-5);
        }
    }
}

TEST_CASE("the batchnorm training-backward formula is the derivative of the forward") {
    // Central differences of L(x) = sum_i dy_i * y_i(x) on the double forward,
    // against the double reference backward (h = 1e-6: truncation ~h^2, rounding ~1e-16/h).
    Generator g(33);
    const BnShape s{3, 2, 5, 0.f};
    const double eps = 1e-5;
    const auto xf = uniform(g, s.N * s.C * s.HW), dy = uniform(g, s.N * s.C * s.HW);
    const auto gamma = uniform(g, s.C, 0.5f, 1.5f), beta = uniform(g, s.C);
    const std::vector<double> x = to_double(xf);
    std::vector<double> mean, var;
    naive_stats(s, xf, mean, var);
    std::vector<float> meanf(s.C), invstdf(s.C);
    for (int64_t c = 0; c < s.C; ++c) {
        meanf[c] = static_cast<float>(mean[c]);
        invstdf[c] = static_cast<float>(1.0 / std::sqrt(var[c] + eps));
    }
    const BnGrads ref = naive_backward(s, xf, dy, gamma, meanf, invstdf, true);
    const double h = 1e-6;
    for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i) {
        std::vector<double> xp = x, xm = x;
        xp[i] += h;
        xm[i] -= h;
        const auto yp = naive_train_forward(s, xp, eps, gamma, beta), ym = naive_train_forward(s, xm, eps, gamma, beta);
        double lp = 0, lm = 0;
        for (size_t j = 0; j < yp.size(); ++j) {
            lp += dy[j] * yp[j];
            lm += dy[j] * ym[j];
        }
        // The reference uses float-rounded statistics (rel. 6e-8): 1e-5 covers it.
        CHECK(ref.dx[i] == doctest::Approx((lp - lm) / (2 * h)).epsilon(1e-5).scale(1.0));
    }
}

namespace {

// torch.optim.SGD step, transcribed from PyTorch's _single_tensor_sgd, in double.
struct SgdRef {
    std::vector<double> p;
    std::vector<std::optional<double>> buf;
    void step(const SgdParams& o, const std::vector<float>& grad) {
        for (size_t i = 0; i < p.size(); ++i) {
            double d_p = grad[i];
            if (o.weight_decay != 0) d_p += o.weight_decay * p[i];
            if (o.momentum != 0) {
                if (!buf[i])
                    buf[i] = d_p;
                else
                    buf[i] = o.momentum * *buf[i] + (1.0 - o.dampening) * d_p;
                d_p = o.nesterov ? d_p + o.momentum * *buf[i] : *buf[i];
            }
            p[i] -= o.lr * d_p;
        }
    }
};

// torch.optim.Adam / AdamW step (_single_tensor_adam, amsgrad = False), in double.
struct AdamRef {
    std::vector<double> p, m, v;
    void step(const AdamParams& o, int64_t t, const std::vector<float>& grad) {
        for (size_t i = 0; i < p.size(); ++i) {
            double gi = grad[i];
            if (o.weight_decay != 0) {
                if (o.decoupled)
                    p[i] *= 1.0 - static_cast<double>(o.lr) * o.weight_decay;
                else
                    gi += o.weight_decay * p[i];
            }
            m[i] = o.beta1 * m[i] + (1.0 - o.beta1) * gi;
            v[i] = o.beta2 * v[i] + (1.0 - o.beta2) * gi * gi;
            const double bc1 = 1.0 - std::pow(static_cast<double>(o.beta1), static_cast<double>(t));
            const double bc2 = 1.0 - std::pow(static_cast<double>(o.beta2), static_cast<double>(t));
            const double mhat = m[i] / bc1, vhat = v[i] / bc2;
            p[i] -= o.lr * mhat / (std::sqrt(vhat) + o.eps);
        }
    }
};

const int64_t kOptimN = 40003;  // more than one thread's chunk
const int kSteps = 6;

}  // namespace

TEST_CASE("sgd_step follows torch.optim.SGD over several steps") {
    const SgdParams configs[] = {
        {0.1f, 0.f, 0.f, 0.f, false},    // plain
        {0.05f, 0.9f, 0.f, 0.f, false},  // momentum
        {0.05f, 0.9f, 0.3f, 1e-2f, false},  // dampening + weight decay
        {0.05f, 0.9f, 0.f, 1e-2f, true},    // nesterov + weight decay
        {0.01f, 0.5f, 0.5f, 0.f, true},     // nesterov + dampening
    };
    Generator g(34);
    for (const SgdParams& o : configs) {
        INFO("lr=", o.lr, " momentum=", o.momentum, " dampening=", o.dampening, " wd=", o.weight_decay,
             " nesterov=", o.nesterov);
        auto p = uniform(g, kOptimN);
        std::vector<float> buf(kOptimN, kNaN);  // must be overwritten on the first step
        SgdRef ref{to_double(p), std::vector<std::optional<double>>(kOptimN)};
        for (int t = 1; t <= kSteps; ++t) {
            const auto grad = uniform(g, kOptimN);
            cpu_backend().sgd_step(kOptimN, o, t == 1, p.data(), grad.data(), o.momentum != 0.f ? buf.data() : nullptr);
            ref.step(o, grad);
        }
        // Each step adds a few float roundings of O(1) values to p and the buffer
        // (|buf| < 1/(1-momentum) = 10): 6 steps stay within 1e-5 absolute.
        check_close("sgd param", p, ref.p, 1e-6, 1e-5);
        if (o.momentum != 0.f) {
            std::vector<double> bref(kOptimN);
            for (int64_t i = 0; i < kOptimN; ++i) bref[i] = *ref.buf[i];
            check_close("sgd momentum buffer", buf, bref, 1e-6, 1e-5);
        }
    }
}

TEST_CASE("sgd first step stores the gradient itself in the momentum buffer") {
    const SgdParams o{0.1f, 0.9f, 0.5f, 0.f, false};
    float p = 1.f, grad = 0.25f, buf = kNaN;
    cpu_backend().sgd_step(1, o, true, &p, &grad, &buf);
    CHECK(buf == 0.25f);  // not (1 - dampening) * g
    CHECK(p == doctest::Approx(1.f - 0.1f * 0.25f));
}

TEST_CASE("adam_step follows torch.optim.Adam and AdamW over several steps") {
    const AdamParams configs[] = {
        {1e-3f, 0.9f, 0.999f, 1e-8f, 0.f, false},   // Adam defaults
        {1e-2f, 0.8f, 0.99f, 1e-6f, 0.1f, false},   // Adam, L2 weight decay in the gradient
        {1e-2f, 0.8f, 0.99f, 1e-6f, 0.1f, true},    // AdamW, decoupled decay
        {3e-3f, 0.9f, 0.999f, 1e-8f, 0.f, true},    // AdamW without decay = Adam
    };
    Generator g(35);
    for (const AdamParams& o : configs) {
        INFO("lr=", o.lr, " betas=", o.beta1, ",", o.beta2, " eps=", o.eps, " wd=", o.weight_decay,
             " decoupled=", o.decoupled);
        auto p = uniform(g, kOptimN);
        std::vector<float> m(kOptimN, 0.f), v(kOptimN, 0.f);
        AdamRef ref{to_double(p), std::vector<double>(kOptimN, 0.0), std::vector<double>(kOptimN, 0.0)};
        for (int t = 1; t <= kSteps; ++t) {
            const auto grad = uniform(g, kOptimN);
            cpu_backend().adam_step(kOptimN, o, t, p.data(), grad.data(), m.data(), v.data());
            ref.step(o, t, grad);
        }
        // p moves by ~lr per step; the step itself is accurate to a few ulp
        // relative, so the error is dominated by rounding p (ulp(1) = 1.2e-7) once
        // or twice per step: 2e-6 absolute over 6 steps.
        check_close("adam param", p, ref.p, 1e-6, 2e-6);
        check_close("adam m", m, ref.m, 1e-5, 1e-7);
        check_close("adam v", v, ref.v, 1e-5, 1e-9);
    }
}

TEST_CASE("adam's first step moves each parameter by about lr against the gradient sign") {
    // Step 1: mhat = g, vhat = g^2, so p -= lr * g / (|g| + eps).
    const AdamParams o{0.01f, 0.9f, 0.999f, 1e-8f, 0.f, false};
    float p[2] = {1.f, 1.f}, grad[2] = {0.5f, -2.f}, m[2] = {0.f, 0.f}, v[2] = {0.f, 0.f};
    cpu_backend().adam_step(2, o, 1, p, grad, m, v);
    CHECK(p[0] == doctest::Approx(0.99f).epsilon(1e-6));
    CHECK(p[1] == doctest::Approx(1.01f).epsilon(1e-6));
}
