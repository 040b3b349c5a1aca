// Shared helpers of the kernel tests (tests/test_kernels_*.cpp): seeded random
// inputs, element-wise comparisons against double-precision references, and a
// loop over the GEMM instruction sets.
// The naive references themselves live in the test files next to their tests.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/cpu/gemm.h"

namespace gbtest {

inline std::vector<float> uniform(gb::Generator& g, int64_t n, float lo = -1.f, float hi = 1.f) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = g.uniform(lo, hi);
    return v;
}

// Float rounding bound for a value computed as a sum of `terms` float products
// (Higham, "Accuracy and Stability of Numerical Algorithms", Lemma 3.1 and
// eq. 3.5): |computed - exact| <= gamma_terms * sum|products|, gamma_n ~ n * u
// with u = 2^-24. We allow n * 2^-23 (twice the bound) plus 4 extra roundings
// for alpha/beta scaling and the final store; mag[i] is sum|products| for i.
inline double sum_bound(double terms, double mag) { return (terms + 4.0) * std::ldexp(1.0, -23) * mag + 1e-30; }

// Counts elements with |got - ref| > bound(i); reports the worst one.
template <typename Bound>
void check_elements(const std::string& what, const std::vector<float>& got, const std::vector<double>& ref,
                    Bound&& bound) {
    REQUIRE(got.size() == ref.size());
    size_t bad = 0, worst = 0;
    double worst_ratio = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
        const double b = bound(i);
        const double ratio = std::isnan(err) ? std::numeric_limits<double>::infinity() : err / b;
        if (ratio > 1.0) ++bad;
        if (ratio > worst_ratio) {
            worst_ratio = ratio;
            worst = i;
        }
    }
    std::ostringstream msg;
    if (!got.empty())
        msg << what << ": " << bad << " of " << got.size() << " out of tolerance; worst at " << worst << ": got "
            << got[worst] << " want " << ref[worst] << " (error / tolerance = " << worst_ratio << ")";
    INFO(msg.str());
    CHECK(bad == 0);
}

// Sums of `terms` products: tolerance sum_bound(terms, mag[i]).
inline void check_sums(const std::string& what, const std::vector<float>& got, const std::vector<double>& ref,
                       const std::vector<double>& mag, double terms) {
    check_elements(what, got, ref, [&](size_t i) { return sum_bound(terms, mag[i]); });
}

// |got - ref| <= atol + rtol * |ref|.
inline void check_close(const std::string& what, const std::vector<float>& got, const std::vector<double>& ref,
                        double rtol, double atol) {
    check_elements(what, got, ref, [&](size_t i) { return atol + rtol * std::fabs(ref[i]); });
}

inline std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// Runs fn once on every GEMM instruction set this CPU and build can run, then
// restores the one that was selected.
template <typename Fn>
void for_each_gemm_isa(Fn&& fn) {
    namespace cpu = gb::kernels::cpu;
    const cpu::GemmIsa saved = cpu::gemm_isa();
    for (cpu::GemmIsa isa : {cpu::GemmIsa::Scalar, cpu::GemmIsa::Avx2, cpu::GemmIsa::Avx512}) {
        if (!cpu::gemm_isa_available(isa)) continue;
        cpu::set_gemm_isa(isa);
        const std::string isa_name = cpu::gemm_isa_name(isa);
        CAPTURE(isa_name);
        fn();
    }
    cpu::set_gemm_isa(saved);
}

}  // namespace gbtest
