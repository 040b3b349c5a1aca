// Comparison against stored reference values (tests/data, from ../shared/reference):
// the per-sample rule of the reference README: for every sample b,
// max_i |got[b,i] - ref[b,i]| <= tol * max_i |ref[b,i]| (whole-tensor max if that is 0).
#pragma once

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "explain/target.h"
#include "io/safetensors.h"
#include "testing.h"

namespace gb::testing {

// Per sample b: {max_i |got[b,i] - ref[b,i]|, max_i |ref[b,i]|} (the scale is the
// whole tensor's max |ref| where a sample's is 0).
inline std::vector<std::pair<double, double>> per_sample_errors(const Tensor& got, const Tensor& ref) {
    const auto g = got.to_vector<float>(), r = ref.to_vector<float>();
    const int64_t B = ref.dim(0), per = ref.numel() / B;
    double whole = 0;
    for (float v : r) whole = std::max(whole, static_cast<double>(std::fabs(v)));
    std::vector<std::pair<double, double>> out;
    for (int64_t b = 0; b < B; ++b) {
        double scale = 0, err = 0;
        for (int64_t i = 0; i < per; ++i) {
            const size_t k = static_cast<size_t>(b * per + i);
            scale = std::max(scale, static_cast<double>(std::fabs(r[k])));
            err = std::max(err, static_cast<double>(std::fabs(g[k] - r[k])));
        }
        out.emplace_back(err, scale == 0 ? whole : scale);
    }
    return out;
}

inline void check_reference(const Tensor& got, const Tensor& ref, double tol, const std::string& what) {
    REQUIRE_MESSAGE(got.shape() == ref.shape(), what << ": shape " << got.shape().str() << " vs reference "
                                                     << ref.shape().str());
    const auto errors = per_sample_errors(got, ref);
    for (size_t b = 0; b < errors.size(); ++b) {
        const double err = errors[b].first, scale = errors[b].second;  // no structured binding: clang 14 cannot capture one
        CHECK_MESSAGE(err <= tol * scale, what << " sample " << b << ": max error " << err << " > " << tol << " x "
                                               << scale);
    }
}

// The largest per-sample error relative to the sample's scale (the quantity
// check_reference bounds), for asserting that two maps really differ.
inline double max_relative_error(const Tensor& got, const Tensor& ref) {
    double worst = 0;
    for (const auto& [err, scale] : per_sample_errors(got, ref)) worst = std::max(worst, scale > 0 ? err / scale : err);
    return worst;
}

// The README's second bound for unstable elements: in every sample at least 99%
// of the elements satisfy |got - ref| <= tol99 * max_i |ref[b,i]|.
inline void check_reference_99(const Tensor& got, const Tensor& ref, double tol99, const std::string& what) {
    const auto g = got.to_vector<float>(), r = ref.to_vector<float>();
    const int64_t B = ref.dim(0), per = ref.numel() / B;
    for (int64_t b = 0; b < B; ++b) {
        double scale = 0;
        for (int64_t i = 0; i < per; ++i) scale = std::max(scale, static_cast<double>(std::fabs(r[static_cast<size_t>(b * per + i)])));
        int64_t ok = 0;
        for (int64_t i = 0; i < per; ++i) {
            const size_t k = static_cast<size_t>(b * per + i);
            ok += std::fabs(g[k] - r[k]) <= tol99 * scale;
        }
        CHECK_MESSAGE(ok >= static_cast<int64_t>(std::ceil(0.99 * static_cast<double>(per))),
                      what << " sample " << b << ": only " << ok << " of " << per << " elements within tol99 " << tol99);
    }
}

// One Target per entry of an integer class tensor (the reference files' `target`).
inline std::vector<explain::Target> targets_of(const Tensor& t) {
    std::vector<explain::Target> out;
    for (int32_t c : t.to_vector<int32_t>()) out.push_back(explain::Target::of(c));
    return out;
}

// The tolerance stored for `name` in the file's metadata (tol.<name>).
inline double reference_tol(const io::SafeTensors& f, const std::string& name) {
    const auto it = f.metadata.find("tol." + name);
    REQUIRE_MESSAGE(it != f.metadata.end(), "no tol." << name << " in " << f.source);
    return std::stod(it->second);
}

}  // namespace gb::testing
