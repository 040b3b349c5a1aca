// CPU backend: backend selection and GEMM against naive double-precision
// loops written here (convolution: test_kernels_conv.cpp).
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
#include "kernel_reference.h"

using namespace gb;
using namespace gb::kernels;
using gbtest::check_sums;
using gbtest::for_each_gemm_isa;
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
