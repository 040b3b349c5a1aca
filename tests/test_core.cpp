// core/: Shape, Tensor handles and views, factories, Device errors, RNG, parallel_for.
#include <atomic>
#include <sstream>

#include "core/cpu_allocator.h"
#include "core/cuda_runtime.h"
#include "core/factory.h"
#include "core/parallel.h"
#include "core/parse.h"
#include "core/rng.h"
#include "testing.h"

using namespace gb;

TEST_CASE("Shape: numel, axes, errors") {
    Shape s{2, 3, 4};
    CHECK(s.numel() == 24);
    CHECK(s[-1] == 4);
    CHECK(s.prod(1, 3) == 12);
    CHECK(s.str() == "[2, 3, 4]");
    CHECK(Shape{}.numel() == 1);
    CHECK_THROWS_WITH_AS(s[3], doctest::Contains("axis 3 is out of range for shape [2, 3, 4]"), Error);
    CHECK_THROWS_WITH_AS(Shape({2, -1}), doctest::Contains("negative"), Error);
}

TEST_CASE("Tensor: factories and host round trip") {
    Tensor z = zeros(Shape{2, 3});
    for (float v : z.to_vector<float>()) CHECK(v == 0.f);
    Tensor f = full(Shape{4}, 2.5f);
    for (float v : f.to_vector<float>()) CHECK(v == 2.5f);
    Tensor a = arange(0.f, 5.f);
    CHECK(a.to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4});
    CHECK(arange(1.f, 2.f, 0.25f).numel() == 4);
    Tensor v = from_vector(std::vector<int32_t>{1, 2, 3}, Shape{3});
    CHECK(v.dtype() == DType::Int32);
    CHECK(v.to_vector<int32_t>() == std::vector<int32_t>{1, 2, 3});
    CHECK(full(Shape{}, 7.f).item() == 7.f);
    CHECK_THROWS_WITH_AS(from_vector(std::vector<float>{1, 2}, Shape{3}), doctest::Contains("do not fill shape [3]"),
                         Error);
    CHECK_THROWS_WITH_AS(v.data<float>(), doctest::Contains("holds int32, accessed as float32"), Error);
    CHECK_THROWS_WITH_AS(Tensor().shape(), doctest::Contains("undefined"), Error);
    CHECK_THROWS_WITH_AS(f.item(), doctest::Contains("single-element"), Error);
}

TEST_CASE("Tensor: views share storage, copies do not") {
    Tensor t = arange(0.f, 12.f).view(Shape{3, 4});
    Tensor v = t.view(Shape{2, 6});
    CHECK(v.shares_storage_with(t));
    v.data<float>()[0] = 100.f;
    CHECK(t.to_vector<float>()[0] == 100.f);
    Tensor row = t.narrow(1, 2);
    CHECK(row.shape() == Shape{2, 4});
    CHECK(row.to_vector<float>()[0] == 4.f);
    CHECK(row.to_vector<float>()[7] == 11.f);
    Tensor c = t.clone();
    c.data<float>()[1] = -1.f;
    CHECK(t.to_vector<float>()[1] == 1.f);
    CHECK(t.to(Device::cpu()).is_same(t));
    CHECK_THROWS_WITH_AS(t.view(Shape{5}), doctest::Contains("cannot view a tensor of shape [3, 4]"), Error);
    CHECK_THROWS_WITH_AS(t.narrow(2, 2), doctest::Contains("out of range"), Error);
}

TEST_CASE("Tensor: versions count in-place writes") {
    Tensor t = zeros(Shape{3});
    const uint64_t v0 = t.version();
    fill(t, 1.f);
    CHECK(t.version() == v0 + 1);
    t.copy_from(ones(Shape{3}));
    CHECK(t.version() == v0 + 2);
    CHECK_THROWS_WITH_AS(t.copy_from(ones(Shape{4})), doctest::Contains("does not match"), Error);
}

TEST_CASE("Tensor: printing names shape, dtype, device and values") {
    std::ostringstream s;
    s << arange(0.f, 3.f);
    CHECK(s.str() == "Tensor(shape=[3], dtype=float32, device=cpu, values=[0, 1, 2])");
    CHECK(arange(0.f, 40.f).str(4).find("... (40 total)") != std::string::npos);
}

TEST_CASE("Device: CUDA without a usable GPU is a clear error") {
    CHECK(Device::parse("cpu") == Device::cpu());
    CHECK_THROWS_WITH_AS(Device::parse("gpu"), doctest::Contains("expected cpu, cuda or cuda:N"), Error);
    if (cuda::device_count() == 0) {
        CHECK_THROWS_WITH_AS(Device::cuda(), doctest::Contains("CUDA device requested"), Error);
        CHECK_THROWS_WITH_AS(Device::parse("cuda:0"), doctest::Contains("CUDA"), Error);
        if (!cuda::built()) CHECK_THROWS_WITH_AS(Device::cuda(), doctest::Contains("built without CUDA"), Error);
    } else {
        CHECK_THROWS_WITH_AS(Device::cuda(cuda::device_count()), doctest::Contains("GPU(s) are present"), Error);
    }
}

TEST_CASE("RNG: reproducible from the seed, sane moments") {
    Generator a(42), b(42), c(43);
    std::vector<float> va, vb, vc;
    for (int i = 0; i < 100; ++i) {
        va.push_back(a.uniform());
        vb.push_back(b.uniform());
        vc.push_back(c.uniform());
    }
    CHECK(va == vb);
    CHECK(va != vc);
    // n = 200000 draws: the standard error of the mean is 1/sqrt(12 n) = 6.5e-4
    // (uniform) and 1/sqrt(n) = 2.2e-3 (normal); bounds are about 5 standard errors.
    Generator g(7);
    const int n = 200000;
    double su = 0, sn = 0, sn2 = 0;
    for (int i = 0; i < n; ++i) {
        const float u = g.uniform();
        REQUIRE(u >= 0.f);
        REQUIRE(u < 1.f);
        su += u;
        const float z = g.normal();
        sn += z;
        sn2 += static_cast<double>(z) * z;
    }
    CHECK(std::fabs(su / n - 0.5) < 3.5e-3);
    CHECK(std::fabs(sn / n) < 1.2e-2);
    CHECK(std::fabs(sn2 / n - 1.0) < 1.5e-2);
    manual_seed(5);
    const float first = default_generator().uniform();
    manual_seed(5);
    CHECK(default_generator().uniform() == first);
}

TEST_CASE("parallel_for visits every index exactly once") {
    for (int64_t n : {0, 1, 7, 1000, 100003}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        parallel_for(0, n, 16, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
        });
        for (auto& h : hits) REQUIRE(h.load() == 1);
    }
    CHECK_THROWS_AS(set_num_threads(0), Error);
}

TEST_CASE("CPU allocator: large freed blocks are reused, small ones are not cached") {
    gb::cpu_alloc::empty_cache();
    if (gb::cpu_alloc::cache_limit() == 0) {  // sanitizer build: nothing is cached, by design
        { Tensor big(Shape{100000}); }
        CHECK(gb::cpu_alloc::cached_bytes() == 0);
        return;
    }
    const void* first = nullptr;
    {
        Tensor big(Shape{100000});  // 400 KB
        first = big.raw_data();
    }
    CHECK(gb::cpu_alloc::cached_bytes() >= 400000);
    Tensor again(Shape{100000});
    CHECK(again.raw_data() == first);
    CHECK(gb::cpu_alloc::cached_bytes() == 0);
    { Tensor small(Shape{16}); }
    CHECK(gb::cpu_alloc::cached_bytes() == 0);
    CHECK(reinterpret_cast<uintptr_t>(Tensor(Shape{3}).raw_data()) % 64 == 0);
}

TEST_CASE("parse_int / parse_number: whole text, in range, no wrap-around, clear errors") {
    CHECK(gb::parse_int("42", 0, 100, "n") == 42);
    CHECK(gb::parse_int("+7", 0, 100, "n") == 7);
    CHECK(gb::parse_int("-5", -10, 10, "n") == -5);
    auto message = [](auto f) {
        try {
            f();
        } catch (const gb::Error& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    CHECK(message([] { gb::parse_int("28abc", 1, 100, "metadata 'input_size'"); }) ==
          "metadata 'input_size': '28abc' is not an integer in [1, 100]");
    CHECK(message([] { gb::parse_int("4294967299", 0, INT32_MAX, "target"); }) ==
          "target: 4294967299 is out of range (expected an integer in [0, 2147483647])");
    CHECK(message([] { gb::parse_int("99999999999999999999", 0, INT64_MAX, "n"); }) ==
          "n: '99999999999999999999' is too large (expected an integer >= 0)");
    CHECK(message([] { gb::parse_int("", 0, 5, "n"); }).find("is not an integer") != std::string::npos);
    CHECK(message([] { gb::parse_int(" 3", 0, 5, "n"); }).find("is not an integer") != std::string::npos);
    CHECK(gb::parse_uint("18446744073709551615", "seed") == UINT64_MAX);
    CHECK(message([] { gb::parse_uint("-1", "seed"); }) == "seed: '-1' is not an integer in [0, 2^64)");
    CHECK(message([] { gb::parse_uint("18446744073709551616", "seed"); }).find("too large") != std::string::npos);
    CHECK(gb::parse_number("0.25", 0, 1, "x") == 0.25);
    CHECK(gb::parse_number("1e-3", 0, 1, "x") == 1e-3);
    CHECK(message([] { gb::parse_number("nan", 0, 1, "std"); }) == "std: 'nan' is not a number in [0, 1]");
    CHECK(message([] { gb::parse_number("inf", -1e300, 1e300, "std"); }) == "std: 'inf' is not a finite number");
    CHECK(message([] { gb::parse_number("1e30", 0, 1000, "sigma"); }) ==
          "sigma: 1e30 is out of range (expected a number in [0, 1000])");
    CHECK(message([] { gb::parse_number("1e999", 0, 1000, "sigma"); }).find("out of range") != std::string::npos);
    const std::vector<double> v = gb::parse_numbers("0.5,1,2.5", 0, 10, "mean");
    CHECK(v == std::vector<double>{0.5, 1, 2.5});
    CHECK(message([] { gb::parse_numbers("0.5,,1", 0, 10, "mean"); }) == "mean: '' is not a number in [0, 10]");
}

TEST_CASE("edit_distance: Levenshtein distance (worked examples)") {
    CHECK(gb::edit_distance("kitten", "sitting") == 3);  // k->s, e->i, +g
    CHECK(gb::edit_distance("", "abc") == 3);
    CHECK(gb::edit_distance("gradcam", "gradcam") == 0);
    CHECK(gb::edit_distance("saliencey", "saliency") == 1);
    CHECK(gb::edit_distance("ab", "ba") == 2);  // no transpositions
}

TEST_CASE("borrow: a tensor on memory owned elsewhere, released once by the last tensor on it") {
    std::vector<float> owner = {1, 2, 3, 4, 5, 6};
    int released = 0;
    {
        Tensor t = borrow(owner.data(), Shape{2, 3}, DType::Float32, Device::cpu(), [&] { ++released; });
        CHECK(t.data<float>() == owner.data());  // nothing copied
        Tensor row = t.narrow(1, 1);              // a view keeps the storage
        t = Tensor();
        CHECK(released == 0);
        CHECK(row.to_vector<float>() == std::vector<float>{4, 5, 6});
        owner[3] = 40;                            // writes by the owner are seen: it is the same memory
        CHECK(row.to_vector<float>()[0] == 40);
    }
    CHECK(released == 1);
    CHECK_THROWS_WITH_AS(borrow(nullptr, Shape{2}, DType::Float32, Device::cpu(), [] {}),
                         doctest::Contains("null data"), gb::Error);
    CHECK_THROWS_WITH_AS(borrow(owner.data(), Shape{2}, DType::Float32, Device::cpu(), nullptr),
                         doctest::Contains("release function"), gb::Error);
}
