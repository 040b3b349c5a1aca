// CPU backend: backend selection, GEMM and convolution against naive
// double-precision loops written here.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/cuda_runtime.h"
#include "core/device.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "kernels/backend.h"
#include "kernels/cpu/gemm.h"
#include "kernels/geometry.h"
#include "kernel_reference.h"

using namespace gb;
using namespace gb::kernels;
using gbtest::check_sums;
using gbtest::uniform;

TEST_CASE("backend_for(cpu) is the CPU backend") {
    Backend& b = backend_for(Device::cpu());
    CHECK(&b == &cpu_backend());
    CHECK(b.device() == Device::cpu());
    CHECK(b.name() == "cpu");
    if (!cuda::built()) CHECK_THROWS_AS(backend_for(Device::cuda()), Error);
}

namespace {

struct GemmRef {
    std::vector<double> value, mag;  // mag: |alpha| sum|a*b| + |beta*c| + |biases| per element (error bound scale)
};

// C = epilogue(alpha * op(A) * op(B) + beta * C) by the definition, in double;
// beta == 0 ignores C. The epilogue adds row_bias[i] and col_bias[j], then ReLU.
GemmRef naive_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const std::vector<float>& A,
                   int64_t lda, const std::vector<float>& B, int64_t ldb, float beta, const std::vector<float>& C,
                   int64_t ldc, const cpu::GemmEpilogue& ep = {}) {
    GemmRef r{std::vector<double>(C.begin(), C.end()), std::vector<double>(C.size(), 0.0)};
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
            double s = 0, m = 0;
            for (int64_t k = 0; k < K; ++k) {
                const double a = ta ? A[k * lda + i] : A[i * lda + k];
                const double b = tb ? B[j * ldb + k] : B[k * ldb + j];
                s += a * b;
                m += std::fabs(a * b);
            }
            const double c = beta == 0.f ? 0.0 : static_cast<double>(beta) * C[i * ldc + j];
            double v = alpha * s + c, mag = std::fabs(alpha) * m + std::fabs(c);
            if (ep.row_bias) v += ep.row_bias[i], mag += std::fabs(ep.row_bias[i]);
            if (ep.col_bias) v += ep.col_bias[j], mag += std::fabs(ep.col_bias[j]);
            if (ep.relu && v < 0) v = 0;
            r.value[i * ldc + j] = v;
            r.mag[i * ldc + j] = mag;
        }
    return r;
}

enum class Epi { None, RowBias, ColBias, BothRelu, Relu };

// Runs one GEMM through gemm_ex (or Backend::gemm without epilogue) on the
// current instruction set and compares it with naive_gemm. C has `pad_c` extra
// columns per row and 64 floats of guard before and after; both must come back
// untouched (masked edge stores are where overflows hide, and ASan does not see
// inside masked-store intrinsics).
// With `prepack` (op(B) = B only), op(A) goes in packed by pack_a_ahead through
// gemm_packed_a, and again through gemm_rows_b.
void run_gemm_case(Generator& g, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, float beta,
                   bool nan_c, Epi epi = Epi::None, int64_t pad_c = -1, bool prepack = false) {
    const int64_t lda = (ta ? M : K) + static_cast<int64_t>(g.below(3));
    const int64_t ldb = (tb ? K : N) + static_cast<int64_t>(g.below(3));
    const int64_t ldc = N + (pad_c >= 0 ? pad_c : static_cast<int64_t>(g.below(3)));
    const int64_t guard = 64;
    const float sentinel = -12345.f;
    const auto A = uniform(g, (ta ? K : M) * lda);
    const auto B = uniform(g, (tb ? N : K) * ldb);
    const auto row_bias = uniform(g, M), col_bias = uniform(g, N);
    cpu::GemmEpilogue ep;
    if (epi == Epi::RowBias || epi == Epi::BothRelu) ep.row_bias = row_bias.data();
    if (epi == Epi::ColBias || epi == Epi::BothRelu) ep.col_bias = col_bias.data();
    ep.relu = epi == Epi::BothRelu || epi == Epi::Relu;
    auto C = uniform(g, M * ldc);
    if (nan_c) std::fill(C.begin(), C.end(), std::numeric_limits<float>::quiet_NaN());
    const GemmRef ref = naive_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
    std::vector<float> buf(static_cast<size_t>(guard), sentinel);
    buf.insert(buf.end(), C.begin(), C.end());
    buf.insert(buf.end(), static_cast<size_t>(guard), sentinel);
    float* out = buf.data() + guard;
    std::vector<float> packed_buf;
    if (prepack) {
        REQUIRE(!tb);
        const cpu::PackedA la = cpu::packed_a_layout(M, K);
        packed_buf.assign(static_cast<size_t>(la.size + 16), std::numeric_limits<float>::quiet_NaN());
        float* pa = packed_buf.data();
        while (reinterpret_cast<uintptr_t>(pa) % 64 != 0) ++pa;
        cpu::pack_a_ahead(ta, M, K, A.data(), lda, pa);
        cpu::gemm_packed_a(M, N, K, alpha, pa, B.data(), ldb, beta, out, ldc, ep);
        // B read row by row through pointers (gemm_rows_b) into a copy padded to
        // whole panels with garbage that the keep masks zero: bit for bit
        // gemm_packed_a (padding columns of C keep their NaNs); with every fifth
        // column masked as well, bit for bit gemm_packed_a on B with them zeroed.
        const std::vector<float> packed_result(out, out + M * ldc);
        const int64_t r = cpu::gemm_panel_width(), npad = (N + r - 1) / r * r;
        std::vector<float> bpad(static_cast<size_t>(K * npad), 1e30f);
        for (int64_t k = 0; k < K; ++k)
            for (int64_t j = 0; j < N; ++j) bpad[static_cast<size_t>(k * npad + j)] = B[k * ldb + j];
        for (bool mask_some : {false, true}) {
            std::vector<uint32_t> keep(static_cast<size_t>(npad), 0u);
            std::vector<float> bm = B;
            for (int64_t j = 0; j < N; ++j) {
                const bool drop = mask_some && j % 5 == 2;
                keep[static_cast<size_t>(j)] = drop ? 0u : ~0u;
                if (drop)
                    for (int64_t k = 0; k < K; ++k) bm[k * ldb + j] = 0.f;
            }
            std::copy(C.begin(), C.end(), out);
            cpu::gemm_packed_a(M, N, K, alpha, pa, bm.data(), ldb, beta, out, ldc, ep);
            const std::vector<float> expected(out, out + M * ldc);
            std::copy(C.begin(), C.end(), out);
            std::vector<const float*> rows(static_cast<size_t>(K));
            const std::vector<const uint32_t*> kp(static_cast<size_t>(K), keep.data());
            for (int64_t k = 0; k < K; ++k) rows[static_cast<size_t>(k)] = bpad.data() + k * npad;
            cpu::gemm_rows_b(
                M, N, K, alpha, [&] { return cpu::RowsOperands{pa, rows.data(), kp.data()}; }, beta, out, ldc, ep);
            CAPTURE(mask_some);
            CHECK(std::memcmp(out, expected.data(), expected.size() * sizeof(float)) == 0);
        }
        std::copy(packed_result.begin(), packed_result.end(), out);
    } else if (epi == Epi::None)
        cpu_backend().gemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, out, ldc);
    else
        cpu::gemm_ex(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, out, ldc, ep);
    INFO("isa=", cpu::gemm_isa_name(cpu::gemm_isa()), " ta=", ta, " tb=", tb, " M=", M, " N=", N, " K=", K,
         " alpha=", alpha, " beta=", beta, " ldc=", ldc, " epilogue=", static_cast<int>(epi));
    bool guard_kept = true;
    for (int64_t i = 0; i < guard; ++i)
        guard_kept = guard_kept && buf[static_cast<size_t>(i)] == sentinel &&
                     buf[buf.size() - 1 - static_cast<size_t>(i)] == sentinel;
    CHECK(guard_kept);
    // Padding columns of C (j >= N) must be untouched: compare them exactly (NaN
    // padding compares as equal when both are NaN), then leave them out.
    std::vector<float> got(out, out + M * ldc);
    std::vector<double> want = ref.value;
    bool padding_kept = true;
    for (size_t i = 0; i < want.size(); ++i)
        if (static_cast<int64_t>(i) % ldc >= N) {
            padding_kept = padding_kept && (got[i] == C[i] || (std::isnan(got[i]) && std::isnan(C[i])));
            got[i] = 0.f, want[i] = 0.0;
        }
    CHECK(padding_kept);
    // A length-K float dot product scaled by alpha, added to beta*C and the
    // biases: K + 4 roundings (check_sums allows (K + 4) * 2^-23 * mag).
    check_sums("gemm", got, want, ref.mag, static_cast<double>(K));
}

// Runs fn once on every GEMM instruction set this CPU and build can run, then
// restores the one that was selected.
template <typename Fn>
void for_each_gemm_isa(Fn&& fn) {
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

}  // namespace

TEST_CASE("gemm instruction sets: scalar always available, unavailable ones refused") {
    CHECK(cpu::gemm_isa_available(cpu::GemmIsa::Scalar));
    CHECK(std::string(cpu::gemm_isa_name(cpu::GemmIsa::Avx512)) == "avx512");
    CHECK(std::string(cpu::gemm_isa_name(cpu::GemmIsa::Avx2)) == "avx2");
    CHECK(std::string(cpu::gemm_isa_name(cpu::GemmIsa::Scalar)) == "scalar");
    for (cpu::GemmIsa isa : {cpu::GemmIsa::Avx2, cpu::GemmIsa::Avx512})
        if (!cpu::gemm_isa_available(isa)) CHECK_THROWS_AS(cpu::set_gemm_isa(isa), Error);
    MESSAGE("gemm instruction set in use: ", std::string(cpu::gemm_isa_name(cpu::gemm_isa())));
}

TEST_CASE("gemm matches the definition for every instruction set, transpose, odd sizes and padded strides") {
    Generator g(1);
    const int64_t sizes[] = {1, 3, 7, 13, 17, 31, 33, 65, 97};
    for_each_gemm_isa([&] {
        for (int t = 0; t < 4; ++t) {
            const bool ta = t & 1, tb = t & 2;
            for (int rep = 0; rep < 12; ++rep) {
                const int64_t M = sizes[g.below(9)], N = sizes[g.below(9)], K = sizes[g.below(9)];
                run_gemm_case(g, ta, tb, M, N, K, 1.f, 0.f, false);
                run_gemm_case(g, ta, tb, M, N, K, -0.75f, 1.5f, false, Epi::None, 1 + g.below(17));
                run_gemm_case(g, ta, tb, M, N, K, 0.5f, 1.f, false);
            }
        }
    });
}

TEST_CASE("gemm is right around the tile and block sizes of every instruction set") {
    // Tiles: 4x16 (scalar), 6x16 (AVX2), 12x32 (AVX-512); depth blocks of 256 / 384
    // (split evenly), row blocks of 96..144, column blocks of 1024 / 2048. The
    // sizes sit on both sides of those, and of half a tile, where C^T is computed.
    Generator g(4);
    for_each_gemm_isa([&] {
        for (int t = 0; t < 4; ++t) {
            const bool ta = t & 1, tb = t & 2;
            run_gemm_case(g, ta, tb, 12, 32, 384, 1.f, 0.f, false, Epi::None, 0);
            run_gemm_case(g, ta, tb, 13, 33, 385, 1.f, 1.f, false, Epi::None, 5);
            run_gemm_case(g, ta, tb, 11, 31, 257, 2.f, 0.f, false, Epi::None, 15);
            run_gemm_case(g, ta, tb, 145, 47, 770, 1.f, -0.5f, false, Epi::None, 3);
            run_gemm_case(g, ta, tb, 97, 15, 129, 1.f, 0.f, false, Epi::None, 17);
            run_gemm_case(g, ta, tb, 290, 9, 40, 1.f, 1.f, false, Epi::None, 1);
            run_gemm_case(g, ta, tb, 6, 1030, 20, 0.5f, 0.f, false, Epi::None, 16);
            run_gemm_case(g, ta, tb, 30, 2049, 9, 1.f, 0.f, false, Epi::None, 0);
        }
    });
}

TEST_CASE("gemm with beta = 0 ignores a C full of NaN") {
    Generator g(2);
    for_each_gemm_isa([&] {
        for (int t = 0; t < 4; ++t) {
            run_gemm_case(g, t & 1, t & 2, 13, 17, 31, 1.f, 0.f, true, Epi::None, 3);
            run_gemm_case(g, t & 1, t & 2, 150, 70, 400, 0.5f, 0.f, true, Epi::None, 2);
            run_gemm_case(g, t & 1, t & 2, 40, 5, 30, 1.f, 0.f, true, Epi::BothRelu, 1);
        }
    });
}

TEST_CASE("gemm with K = 0 or alpha = 0 scales C by beta") {
    std::vector<float> C(12, 2.f), nanc(12, std::numeric_limits<float>::quiet_NaN());
    const float a[1] = {std::numeric_limits<float>::quiet_NaN()};
    cpu_backend().gemm(false, false, 3, 4, 0, 1.f, a, 1, a, 4, 0.5f, C.data(), 4);
    for (float c : C) CHECK(c == 1.f);
    cpu_backend().gemm(false, false, 3, 4, 0, 1.f, a, 1, a, 4, 0.f, nanc.data(), 4);
    for (float c : nanc) CHECK(c == 0.f);
    std::vector<float> A(6, 1.f), B(8, 1.f);
    cpu_backend().gemm(false, false, 3, 4, 2, 0.f, A.data(), 2, B.data(), 4, 3.f, C.data(), 4);
    for (float c : C) CHECK(c == 3.f);
    // The epilogue still applies: relu(0.5 * C + row_bias[i] + col_bias[j]).
    const float rb[3] = {1.f, -10.f, 0.f}, cb[4] = {0.f, 1.f, 2.f, 3.f};
    cpu::gemm_ex(false, false, 3, 4, 0, 1.f, a, 1, a, 4, 0.5f, C.data(), 4, cpu::GemmEpilogue{rb, cb, true});
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 4; ++j) CHECK(C[i * 4 + j] == std::max(0.f, 1.5f + rb[i] + cb[j]));
}

TEST_CASE("gemm_ex applies row bias, column bias and ReLU after the last depth block") {
    Generator g(5);
    for_each_gemm_isa([&] {
        for (int t = 0; t < 4; ++t) {
            const bool ta = t & 1, tb = t & 2;
            for (Epi e : {Epi::RowBias, Epi::ColBias, Epi::BothRelu, Epi::Relu}) {
                run_gemm_case(g, ta, tb, 33, 50, 31, 1.f, 0.f, false, e, 2);
                run_gemm_case(g, ta, tb, 70, 40, 800, 0.5f, 1.f, false, e, 0);  // three depth blocks, beta once
                run_gemm_case(g, ta, tb, 64, 3, 100, 1.f, 0.f, false, e, 1);    // computed as C^T
            }
        }
    });
}

TEST_CASE("gemm_packed_a and gemm_rows_b match the definition for op(A) packed ahead of time") {
    Generator g(9);
    for_each_gemm_isa([&] {
        // (M, N, K): one panel, several depth blocks with partial panels, a conv forward, backward-data.
        const int64_t shapes[][3] = {{5, 5, 1}, {33, 32, 9}, {37, 70, 800}, {32, 784, 288}, {288, 196, 64}};
        for (const auto& sh : shapes)
            for (bool ta : {false, true}) {
                run_gemm_case(g, ta, false, sh[0], sh[1], sh[2], 1.f, 0.f, true, Epi::None, 1, true);
                run_gemm_case(g, ta, false, sh[0], sh[1], sh[2], 0.5f, 1.f, false, Epi::RowBias, 0, true);
                run_gemm_case(g, ta, false, sh[0], sh[1], sh[2], -1.f, 0.f, false, Epi::BothRelu, 2, true);
            }
    });
    // Shapes outside the packed loop are refused.
    const float one = 1.f;
    float c = 0.f;
    CHECK_THROWS_AS(cpu::gemm_packed_a(1, 1, 1, 1.f, &one, &one, 1, 0.f, &c, 1, {}), Error);
}

TEST_CASE("gemm with at most four rows of C (no packing), every transpose, epilogue and beta") {
    Generator g(7);
    for (int64_t M : {1, 2, 3, 4})
        for (int t = 0; t < 4; ++t) {
            const bool ta = t & 1, tb = t & 2;
            run_gemm_case(g, ta, tb, M, 1, 1, 1.f, 0.f, true);
            run_gemm_case(g, ta, tb, M, 300, 3136, 1.f, 0.f, true);   // linear 3136 -> 300 on M images
            run_gemm_case(g, ta, tb, M, 517, 37, -0.5f, 1.5f, false);  // two column chunks and a tail
            for (Epi e : {Epi::RowBias, Epi::ColBias, Epi::BothRelu, Epi::Relu})
                run_gemm_case(g, ta, tb, M, 70, 129, 0.75f, e == Epi::Relu ? 0.5f : 0.f, false, e, 1);
        }
}

TEST_CASE("gemm with at most four columns of C (op(B) transposed once), every transpose, epilogue and beta") {
    Generator g(8);
    for (int64_t N : {1, 2, 3, 4})
        for (int t = 0; t < 4; ++t) {
            const bool ta = t & 1, tb = t & 2;
            run_gemm_case(g, ta, tb, 1, N, 1, 1.f, 0.f, true);
            run_gemm_case(g, ta, tb, 512, N, 4608, 1.f, 0.f, true);  // VGG-11's conv8 on one image
            run_gemm_case(g, ta, tb, 37, N, 129, -0.5f, 1.5f, false);
            for (Epi e : {Epi::RowBias, Epi::ColBias, Epi::BothRelu, Epi::Relu})
                run_gemm_case(g, ta, tb, 70, N, 33, 0.75f, e == Epi::Relu ? 0.5f : 0.f, false, e, 1);
        }
}

TEST_CASE("gemm gives the same result on one thread and on several") {
    Generator g(3);
    // (M, N, K): split along M, split along N, computed as C^T.
    const int64_t shapes[][3] = {{97, 45, 70}, {20, 700, 300}, {300, 5, 200}, {2, 3, 4}};
    const int saved = num_threads();
    for_each_gemm_isa([&] {
        for (const auto& s : shapes) {
            const int64_t M = s[0], N = s[1], K = s[2];
            const auto A = uniform(g, M * K), B = uniform(g, K * N), rb = uniform(g, M);
            std::vector<float> c1(M * N), cn(M * N);
            const cpu::GemmEpilogue ep{rb.data(), nullptr, true};
            set_num_threads(1);
            cpu::gemm_ex(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, c1.data(), N, ep);
            set_num_threads(std::max(2, saved));
            cpu::gemm_ex(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, cn.data(), N, ep);
            // Each element is the same blocked dot product whichever thread computes it.
            CAPTURE(M);
            CHECK(c1 == cn);
        }
    });
    set_num_threads(saved);
}

TEST_CASE("gemm_rows_b gives the same result on one thread and on several (cost-balanced splits)") {
    Generator g(4);
    // (M, N, K): conv3/conv4 of vgg-mini on one image (7 panels, the last 4
    // columns wide: splits fall inside a panel), conv2, a deep ragged case.
    const int64_t shapes[][3] = {{64, 196, 288}, {64, 196, 576}, {32, 784, 288}, {37, 70, 800}};
    const int saved = num_threads();
    for_each_gemm_isa([&] {
        for (const auto& s : shapes) {
            const int64_t M = s[0], N = s[1], K = s[2], r = cpu::gemm_panel_width();
            const int64_t npad = (N + r - 1) / r * r;  // B's rows padded to whole panels
            const auto A = uniform(g, M * K), B = uniform(g, K * npad), rb = uniform(g, M);
            const std::vector<uint32_t> keep(static_cast<size_t>(npad), ~0u);
            std::vector<const float*> rows(static_cast<size_t>(K));
            for (int64_t k = 0; k < K; ++k) rows[static_cast<size_t>(k)] = B.data() + k * npad;
            const std::vector<const uint32_t*> kp(static_cast<size_t>(K), keep.data());
            const cpu::PackedA la = cpu::packed_a_layout(M, K);
            std::vector<float> packed(static_cast<size_t>(la.size + 16));
            float* pa = packed.data();
            while (reinterpret_cast<uintptr_t>(pa) % 64 != 0) ++pa;
            cpu::pack_a_ahead(false, M, K, A.data(), K, pa);
            const cpu::GemmEpilogue ep{rb.data(), nullptr, true};
            const auto run = [&](int threads) {
                set_num_threads(threads);
                std::vector<float> c(static_cast<size_t>(M * N), std::numeric_limits<float>::quiet_NaN());
                cpu::gemm_rows_b(
                    M, N, K, 1.f, [&] { return cpu::RowsOperands{pa, rows.data(), kp.data()}; }, 0.f, c.data(), N, ep);
                return c;
            };
            const std::vector<float> one = run(1);
            for (int threads : {2, 3, 5}) {
                CAPTURE(M);
                CAPTURE(N);
                CAPTURE(threads);
                // Every element written (NaN-filled C) and by the same blocked dot product.
                CHECK(std::memcmp(run(threads).data(), one.data(), one.size() * sizeof(float)) == 0);
            }
            CHECK(std::none_of(one.begin(), one.end(), [](float v) { return std::isnan(v); }));
        }
    });
    set_num_threads(saved);
}

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
    // Per-image packed paths (fused), then a 1x1 kernel and small maps (not fused: false).
    const Conv2dGeom fused[] = {make_conv2d_geom(3, 4, 9, 9, 20, 3, 3, 1, 1, 1, 1),
                                make_conv2d_geom(2, 8, 14, 14, 16, 3, 3, 1, 1, 1, 1),
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
            REQUIRE(b.conv2d_lrp_term(g, x.data(), w.data(), bias.data(), r.data(), eps, got.data()));
            CHECK(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0);
        }
    });
    const float one = 1.f;
    float out = 0.f;
    CHECK_FALSE(b.conv2d_lrp_term(make_conv2d_geom(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0), &one, &one, nullptr, &one, eps,
                                  &out));
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
