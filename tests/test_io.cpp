// io/: IDX, CIFAR and image-folder readers (including every malformed case),
// safetensors round trips and a file laid out byte for byte per the spec.
#include <stb_image_write.h>
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <fstream>
#include <thread>

#include "io/dataset.h"
#include "io/idx.h"
#include "io/file_util.h"
#include "io/image.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "idx_writer.h"
#include "png_writer.h"
#include "testing.h"

using namespace gb;
using namespace gb::testing;

TEST_CASE("IDX: plain and gzip files read the same") {
    TempDir dir("idx");
    const std::vector<uint8_t> data = {0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255};
    write_bytes(dir.path("a.idx"), idx_bytes({2, 3, 2}, data));
    write_gz(dir.path("a.idx.gz"), idx_bytes({2, 3, 2}, data));
    for (const auto* name : {"a.idx", "a.idx.gz"}) {
        const io::IdxArray a = io::read_idx(dir.path(name));
        CHECK(a.dims == std::vector<int64_t>{2, 3, 2});
        CHECK(a.data == data);
    }
}

TEST_CASE("IDX: malformed files name the file and the problem") {
    TempDir dir("idx-bad");
    auto expect = [&](const std::string& name, const std::vector<uint8_t>& bytes, const std::string& msg) {
        write_bytes(dir.path(name), bytes);
        CHECK_THROWS_WITH_AS(io::read_idx(dir.path(name)), doctest::Contains(msg.c_str()), Error);
        write_gz(dir.path(name + ".gz"), bytes);
        CHECK_THROWS_WITH_AS(io::read_idx(dir.path(name + ".gz")), doctest::Contains(msg.c_str()), Error);
    };
    expect("magic", {1, 2, 8, 1, 0, 0, 0, 1, 7}, "is not an IDX file");
    expect("type", {0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0}, "is not supported");
    expect("dims", {0, 0, 8, 9}, "9 dimensions");
    expect("short-header", {0, 0, 8, 3, 0, 0}, "truncated");
    auto truncated = idx_bytes({4, 2, 2}, std::vector<uint8_t>(16, 1));
    truncated.resize(truncated.size() - 3);
    expect("truncated", truncated, "truncated");
    auto extra = idx_bytes({2}, {1, 2});
    extra.push_back(9);
    expect("trailing", extra, "");
    // A header announcing 2^32 x 2^32 elements is refused before any allocation.
    expect("huge", {0, 0, 8, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, "elements");
    CHECK_THROWS_WITH_AS(io::read_idx(dir.path("missing")), doctest::Contains("missing"), Error);
}

TEST_CASE("datasets: an IDX pair becomes [N,1,H,W] floats in [0,1] and int32 labels") {
    TempDir dir("mnist");
    write_fake_mnist(dir.path(), 20, 10, 8, true);
    const io::Dataset d = io::load_dataset("fashion-mnist", io::Split::Train, dir.path());
    CHECK(d.images.shape() == Shape{20, 1, 8, 8});
    CHECK(d.labels.to_vector<int32_t>()[13] == 3);
    CHECK(d.classes() == 10);
    CHECK(d.class_names[9] == "Ankle boot");
    for (float v : d.images.to_vector<float>()) REQUIRE((v >= 0.f && v <= 1.f));
    CHECK(io::load_dataset("fashion-mnist", io::Split::Test, dir.path()).size() == 10);
    CHECK(d.head(5).size() == 5);

    // Counts that disagree, and labels out of range.
    write_bytes(dir.path("bad-labels"), idx_bytes({3}, {0, 1, 2}));
    CHECK_THROWS_WITH_AS(io::load_idx(dir.path("train-images-idx3-ubyte.gz"), dir.path("bad-labels"),
                                      std::vector<std::string>(10, "c"), "x"),
                         doctest::Contains("has 3 labels but"), Error);
    write_bytes(dir.path("big-labels"), idx_bytes({20}, std::vector<uint8_t>(20, 12)));
    CHECK_THROWS_WITH_AS(io::load_idx(dir.path("train-images-idx3-ubyte.gz"), dir.path("big-labels"),
                                      std::vector<std::string>(10, "c"), "x"),
                         doctest::Contains("label 12 of sample 0 is outside [0, 10)"), Error);
    CHECK_THROWS_WITH_AS(io::load_dataset("fashion-mnist", io::Split::Train, dir.path("nowhere")),
                         doctest::Contains("not found"), Error);
    CHECK_THROWS_WITH_AS(io::load_dataset("imagenet", io::Split::Train), doctest::Contains("unknown dataset"), Error);
}

TEST_CASE("datasets: CIFAR-10 and CIFAR-100 binary records") {
    TempDir dir("cifar");
    std::vector<uint8_t> rec10, rec100;
    for (int r = 0; r < 3; ++r) {
        rec10.push_back(static_cast<uint8_t>(r + 4));
        rec100.push_back(static_cast<uint8_t>(r));       // coarse
        rec100.push_back(static_cast<uint8_t>(90 + r));  // fine
        for (int i = 0; i < 3072; ++i) {
            rec10.push_back(static_cast<uint8_t>((i + r) % 256));
            rec100.push_back(static_cast<uint8_t>(i % 256));
        }
    }
    write_bytes(dir.path("b10.bin"), rec10);
    write_bytes(dir.path("b100.bin"), rec100);
    const io::Dataset d = io::load_cifar({dir.path("b10.bin")}, 10, false, false, {}, "c10");
    CHECK(d.images.shape() == Shape{3, 3, 32, 32});
    CHECK(d.labels.to_vector<int32_t>() == std::vector<int32_t>{4, 5, 6});
    CHECK(d.images.to_vector<float>()[3072 + 1024] == doctest::Approx((1024 + 1) % 256 / 255.f));  // sample 1, green plane
    const io::Dataset e = io::load_cifar({dir.path("b100.bin")}, 100, true, true, {}, "c100");
    CHECK(e.labels.to_vector<int32_t>() == std::vector<int32_t>{90, 91, 92});
    rec10.pop_back();
    write_bytes(dir.path("short.bin"), rec10);
    CHECK_THROWS_WITH_AS(io::load_cifar({dir.path("short.bin")}, 10, false, false, {}, "c"),
                         doctest::Contains("not a whole number of 3073-byte CIFAR records"), Error);
}

TEST_CASE("datasets: a folder of class folders of PNGs") {
    TempDir dir("folder");
    for (const char* cls : {"cat", "dog"}) std::filesystem::create_directories(dir.path(cls));
    std::vector<uint8_t> rgb(4 * 5 * 3);
    for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 4);
    io::save_png(dir.path("cat/a.png"), rgb.data(), 5, 4, 3);
    io::save_png(dir.path("dog/b.png"), rgb.data(), 5, 4, 3);
    io::save_png(dir.path("dog/c.png"), rgb.data(), 5, 4, 3);
    const io::Dataset d = io::load_image_folder(dir.path());
    CHECK(d.class_names == std::vector<std::string>{"cat", "dog"});
    CHECK(d.images.shape() == Shape{3, 3, 4, 5});
    CHECK(d.labels.to_vector<int32_t>() == std::vector<int32_t>{0, 1, 1});
    // Planar layout: channel 1 of pixel (0, 1) is rgb[1*3 + 1].
    CHECK(d.images.to_vector<float>()[20 + 1] == doctest::Approx(rgb[4] / 255.f));
    const Tensor grey = io::load_image(dir.path("cat/a.png"), 1);
    CHECK(grey.shape() == Shape{1, 4, 5});
    io::save_png(dir.path("dog/small.png"), rgb.data(), 2, 2, 3);
    CHECK_THROWS_WITH_AS(io::load_image_folder(dir.path()), doctest::Contains("all images of a folder dataset must match"),
                         Error);
    write_bytes(dir.path("cat/broken.png"), {0x89, 'P', 'N', 'G', 1, 2, 3});
    CHECK_THROWS_WITH_AS(io::load_image(dir.path("cat/broken.png")), doctest::Contains("broken.png"), Error);
}

TEST_CASE("images: alpha composited onto white, 16-bit PNGs, grey/RGB conversions, notes") {
    TempDir dir("images");
    auto has = [](const std::vector<std::string>& notes, const std::string& text) {
        for (const auto& n : notes)
            if (n.find(text) != std::string::npos) return true;
        return false;
    };
    // RGBA: c' = a c + (1 - a) (white background); exact to float rounding (1e-6).
    const std::vector<uint8_t> rgba = {200, 100, 0, 128, 10, 20, 30, 255, 0, 0, 0, 0};
    io::save_png(dir.path("rgba.png"), rgba.data(), 3, 1, 4);
    std::vector<std::string> notes;
    const Tensor c = io::load_image(dir.path("rgba.png"), 0, &notes);
    REQUIRE(c.shape() == Shape{3, 1, 3});
    const auto cv = c.to_vector<float>();
    const float a = 128.f / 255.f;
    CHECK(cv[0] == doctest::Approx(a * 200.f / 255.f + 1.f - a).epsilon(1e-6));  // R of pixel 0
    CHECK(cv[3 + 0] == doctest::Approx(a * 100.f / 255.f + 1.f - a).epsilon(1e-6));  // G of pixel 0
    CHECK(cv[1] == doctest::Approx(10.f / 255.f).epsilon(1e-6));                 // opaque: unchanged
    CHECK(cv[2] == 1.f);                                                          // transparent: white
    CHECK(has(notes, "RGBA image: composited onto white"));
    // Grey+alpha (8-bit) and RGB -> grey as PIL's convert("L").
    write_png(dir.path("ga.png"), {100, 51, 0, 0}, 2, 1, 2, 8);
    notes.clear();
    const auto gv = io::load_image(dir.path("ga.png"), 0, &notes).to_vector<float>();
    CHECK(gv[0] == doctest::Approx(0.2f * 100.f / 255.f + 0.8f).epsilon(1e-6));
    CHECK(gv[1] == 1.f);
    CHECK(has(notes, "grey+alpha image: composited onto white"));
    notes.clear();
    const auto lv = io::load_image(dir.path("rgba.png"), 1, &notes).to_vector<float>();
    CHECK(lv[1] == doctest::Approx((0.299f * 10 + 0.587f * 20 + 0.114f * 30) / 255.f).epsilon(1e-6));
    CHECK(has(notes, "RGB converted to grey"));
    notes.clear();
    const Tensor rgb = io::load_image(dir.path("ga.png"), 3, &notes);
    CHECK(rgb.shape() == Shape{3, 1, 2});
    CHECK(rgb.to_vector<float>()[4] == gv[0]);
    CHECK(has(notes, "grey converted to RGB"));

    // 16-bit: 0x1234 is 4660 / 65535, not 0x12 / 255 (what an 8-bit decode gives).
    write_png(dir.path("rgb16.png"), {0x1234, 0xFFFF, 0, 0x8001, 0x00FF, 0xABCD}, 2, 1, 3, 16);
    notes.clear();
    const auto r16 = io::load_image(dir.path("rgb16.png"), 0, &notes).to_vector<float>();
    CHECK(r16 == std::vector<float>{0x1234 / 65535.f, 0x8001 / 65535.f, 1.f, 0x00FF / 65535.f, 0.f, 0xABCD / 65535.f});
    CHECK(has(notes, "16-bit image"));
    write_png(dir.path("ga16.png"), {0x1234, 0x8000, 0xFFFF, 0}, 2, 1, 2, 16);
    const auto g16 = io::load_image(dir.path("ga16.png")).to_vector<float>();
    const float a16 = 0x8000 / 65535.f;
    CHECK(g16[0] == doctest::Approx(a16 * 0x1234 / 65535.f + 1.f - a16).epsilon(1e-6));
    CHECK(g16[1] == 1.f);
    write_png(dir.path("grey16.png"), {1, 65534}, 2, 1, 1, 16);
    CHECK(io::load_image(dir.path("grey16.png")).to_vector<float>() == std::vector<float>{1 / 65535.f, 65534 / 65535.f});
}

TEST_CASE("images: JPEG and BMP load; unreadable files are clear errors") {
    TempDir dir("formats");
    std::vector<uint8_t> px(8 * 6 * 3);
    for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i % 3 == 0 ? 200 : i % 3 == 1 ? 60 : 120);
    REQUIRE(stbi_write_bmp(dir.path("a.bmp").c_str(), 8, 6, 3, px.data()));
    const Tensor bmp = io::load_image(dir.path("a.bmp"));
    CHECK(bmp.shape() == Shape{3, 6, 8});
    CHECK(bmp.to_vector<float>()[0] == 200.f / 255.f);  // BMP is lossless
    CHECK(bmp.to_vector<float>()[48] == 60.f / 255.f);
    REQUIRE(stbi_write_jpg(dir.path("a.jpg").c_str(), 8, 6, 3, px.data(), 100));
    const auto jpg = io::load_image(dir.path("a.jpg")).to_vector<float>();
    // A flat colour at quality 100: within 3/255 of the original (JPEG is lossy).
    for (size_t i = 0; i < 48; ++i) CHECK(std::fabs(jpg[i] - 200.f / 255.f) <= 3.f / 255.f);
    CHECK_THROWS_WITH_AS(io::load_image(dir.path("missing.png")), doctest::Contains("missing.png': no such file"), Error);
    write_bytes(dir.path("text.png"), {'h', 'e', 'l', 'l', 'o'});
    CHECK_THROWS_WITH_AS(io::load_image(dir.path("text.png")), doctest::Contains("cannot decode image"), Error);
}

TEST_CASE("safetensors: a file laid out by hand per the spec") {
    // Header {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}
    const std::string header =
        R"({"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
        R"("b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}})";
    std::vector<uint8_t> bytes(8 + header.size() + 16, 0);
    bytes[0] = static_cast<uint8_t>(header.size());
    std::memcpy(bytes.data() + 8, header.data(), header.size());
    const float a[2] = {1.5f, -2.f};
    const int64_t b = 7;
    const size_t data_at = 8 + header.size();
    std::memcpy(bytes.data() + data_at, a, 8);
    std::memcpy(bytes.data() + data_at + 8, &b, 8);
    const io::SafeTensors f = io::parse_safetensors(bytes, "hand");
    CHECK(f.at("a").to_vector<float>() == std::vector<float>{1.5f, -2.f});
    CHECK(f.at("b").to_vector<int32_t>() == std::vector<int32_t>{7});
    CHECK(f.metadata.at("k") == "v");
    CHECK_THROWS_WITH_AS(f.at("c"), doctest::Contains("no tensor named 'c' (the file has: a, b)"), Error);

    // What we write: the 8-byte length, JSON padded with spaces to 8 bytes, then the data in order.
    const auto out = io::serialize_safetensors({{"w", from_vector(std::vector<float>{3.f}, Shape{1, 1})}}, {{"m", "1"}});
    uint64_t n = 0;
    std::memcpy(&n, out.data(), 8);
    CHECK(n % 8 == 0);
    const std::string json(out.begin() + 8, out.begin() + 8 + static_cast<std::ptrdiff_t>(n));
    CHECK(json.rfind(R"({"__metadata__":{"m":"1"},"w":{"data_offsets":[0,4],"dtype":"F32","shape":[1,1]}})", 0) == 0);
    float v;
    std::memcpy(&v, out.data() + 8 + n, 4);
    CHECK(v == 3.f);
    CHECK(out.size() == 8 + n + 4);
}

TEST_CASE("safetensors: round trip and malformed files") {
    TempDir dir("st");
    const Tensor w = rand_tensor(Shape{3, 4}, 1);
    const Tensor l = from_vector(std::vector<int32_t>{1, -2}, Shape{2});
    io::save_safetensors(dir.path("x.safetensors"), {{"w", w}, {"l", l}}, {{"model", "m"}});
    const io::SafeTensors f = io::load_safetensors(dir.path("x.safetensors"));
    CHECK(f.at("w").to_vector<float>() == w.to_vector<float>());
    CHECK(f.at("l").to_vector<int32_t>() == l.to_vector<int32_t>());
    CHECK(f.metadata.at("model") == "m");
    CHECK_FALSE(std::filesystem::exists(dir.path("x.safetensors.tmp." + std::to_string(::getpid()))));

    const auto good = io::serialize_safetensors({{"w", w}});
    auto bad = [&](std::vector<uint8_t> b, const std::string& msg) {
        CHECK_THROWS_WITH_AS(io::parse_safetensors(b, "bad.safetensors"), doctest::Contains(msg.c_str()), Error);
    };
    bad({1, 2, 3}, "too short");
    auto truncated = good;
    truncated.resize(truncated.size() - 4);
    bad(truncated, "past the end of the");
    auto huge = good;
    huge[7] = 0x7F;
    bad(huge, "exceeds the 100000000-byte limit");
    auto longer = good;
    longer[0] = static_cast<uint8_t>(longer[0] + 200);
    bad(longer, "");
    auto not_json = good;
    not_json[9] = '#';
    bad(not_json, "not valid JSON");
    auto with_tail = good;
    with_tail.push_back(0);
    bad(with_tail, "trailing bytes");
    const std::string h = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})";
    std::vector<uint8_t> wrong(8 + h.size() + 4, 0);
    wrong[0] = static_cast<uint8_t>(h.size());
    std::copy(h.begin(), h.end(), wrong.begin() + 8);
    bad(wrong, "hold 4 bytes but shape [2] of F32 needs 8");
    CHECK_THROWS_WITH_AS(io::save_safetensors(dir.path("no/such/dir/x.safetensors"), {{"w", w}}),
                         doctest::Contains("does not exist"), Error);
}

// ---- formats as their specs say (issue 13, item 3) -----------------------------------------

namespace {

// The bytes of a safetensors file with this header and `data` bytes of zeros.
std::vector<uint8_t> st_file(const std::string& header, size_t data) {
    std::vector<uint8_t> b(8 + header.size() + data, 0);
    for (int i = 0; i < 8; ++i) b[static_cast<size_t>(i)] = static_cast<uint8_t>(uint64_t(header.size()) >> (8 * i));
    std::copy(header.begin(), header.end(), b.begin() + 8);
    return b;
}

// Writes `bytes` into a FIFO from another thread while `read` reads it by path: the readers must
// not need a file size or a seek.
template <typename F>
auto through_fifo(const TempDir& dir, const std::vector<uint8_t>& bytes, F read) {
    const std::string path = dir.path("fifo");
    std::filesystem::remove(path);
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    std::thread writer([&] {
        std::ofstream out(path, std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    });
    struct Join {
        std::thread& t;
        ~Join() { t.join(); }
    } join{writer};
    return read(path);
}

std::vector<uint8_t> gz_bytes(const std::vector<uint8_t>& bytes) {
    TempDir dir("gz");
    write_gz(dir.path("x.gz"), bytes);
    return io::read_file(dir.path("x.gz"));
}

}  // namespace

TEST_CASE("safetensors: zero-size tensors are legal, anywhere in the data section, and round-trip") {
    // An empty tensor [0, 3] at [8, 8], between two others, and a scalar (shape []).
    const std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("e":{"dtype":"F32","shape":[0,3],"data_offsets":[8,8]},)"
                          R"("s":{"dtype":"I32","shape":[],"data_offsets":[8,12]}})";
    const io::SafeTensors f = io::parse_safetensors(st_file(h, 12), "empty");
    REQUIRE(f.tensors.size() == 3);
    CHECK(f.at("e").shape() == Shape{0, 3});
    CHECK(f.at("e").numel() == 0);
    CHECK(f.at("s").shape() == Shape{});
    CHECK(f.at("s").numel() == 1);
    // Two empty tensors at the very end, and a file of nothing but an empty tensor.
    const std::string h2 = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("z":{"dtype":"I32","shape":[4,0],"data_offsets":[4,4]},)"
                           R"("y":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})";
    CHECK(io::parse_safetensors(st_file(h2, 4), "end").tensors.size() == 3);
    const std::string h3 = R"({"y":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})";
    CHECK(io::parse_safetensors(st_file(h3, 0), "only").at("y").numel() == 0);

    TempDir dir("st-empty");
    const Tensor w = rand_tensor(Shape{2, 2}, 3);
    io::save_safetensors(dir.path("e.safetensors"),
                         {{"first", Tensor(Shape{0})}, {"w", w}, {"mid", Tensor(Shape{3, 0}, DType::Int32)},
                          {"last", Tensor(Shape{0, 0, 2})}});
    const io::SafeTensors g = io::load_safetensors(dir.path("e.safetensors"));
    CHECK(g.at("first").shape() == Shape{0});
    CHECK(g.at("mid").shape() == Shape{3, 0});
    CHECK(g.at("mid").dtype() == DType::Int32);
    CHECK(g.at("last").shape() == Shape{0, 0, 2});
    CHECK(g.at("w").to_vector<float>() == w.to_vector<float>());
    CHECK(g.at("first").clone().numel() == 0);  // the rest of the library copes with it
}

TEST_CASE("safetensors: the format's rules, each refused with the tensor and the byte offset") {
    auto bad = [](const std::string& header, size_t data, const std::string& msg) {
        CHECK_THROWS_WITH_AS(io::parse_safetensors(st_file(header, data), "bad.st"), doctest::Contains(msg.c_str()),
                             Error);
    };
    // F64 is a dtype of the format, but one glassbox does not read: refused by name.
    bad(R"({"z":{"dtype":"F64","shape":[0],"data_offsets":[0,0]}})", 0, "'z' has dtype F64; glassbox reads");
    bad(R"({"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", 1, "unknown dtype 'Q4' (the format defines BOOL");
    // A hole: 'b' starts 4 bytes after 'a' ends; an overlap: 'b' starts inside 'a'.
    bad(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
        12, "'b' starts at data offset 8 (file byte ");
    bad(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
        8, "an overlap of 4 bytes");
    bad(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8, "the data section starts at 0: a hole of 4");
    bad(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 6, "2 trailing bytes after the last tensor");
    bad(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4, "hold 4 bytes but shape [2] of F32 needs 8");
    bad(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4, "end before they begin");
    bad(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 2, "past the end of the 2-byte data section");
    bad(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
        4, "the key 'a' twice");
    bad(R"(["a"])", 0, "does not start with '{'");
    bad(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, "shape entries must be integers >= 0");
    bad(R"({"a":{"dtype":"F32","shape":[1099511627776, 2],"data_offsets":[0,4]}})", 4, "absurdly large");
    bad(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4, "data_offsets must be [begin, end]");
    bad(R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 0, "past the end");
    // The header's length field is bounded by the reference implementation's 100'000'000 bytes.
    std::vector<uint8_t> huge(16, 0);
    huge[3] = 0x10;  // 2^28
    CHECK_THROWS_WITH_AS(io::parse_safetensors(huge, "h"), doctest::Contains("exceeds the 100000000-byte limit"), Error);
}

TEST_CASE("IDX: a multi-member gzip file reads as the concatenation; truncation and trailing garbage are refused") {
    TempDir dir("idx-gz");
    const std::vector<uint8_t> data = {9, 8, 7, 6, 5, 4};
    const std::vector<uint8_t> whole = idx_bytes({3, 2}, data);
    // Split inside the header, so the second member holds part of it as well as the data.
    const std::vector<uint8_t> head(whole.begin(), whole.begin() + 6), tail(whole.begin() + 6, whole.end());
    std::vector<uint8_t> multi = gz_bytes(head);
    const std::vector<uint8_t> second = gz_bytes(tail);
    multi.insert(multi.end(), second.begin(), second.end());
    const std::vector<uint8_t> empty_member = gz_bytes({});
    multi.insert(multi.end(), empty_member.begin(), empty_member.end());
    write_bytes(dir.path("multi.gz"), multi);
    const io::IdxArray a = io::read_idx(dir.path("multi.gz"));
    CHECK(a.dims == std::vector<int64_t>{3, 2});
    CHECK(a.data == data);

    auto garbage = multi;
    garbage.insert(garbage.end(), {0, 0, 0});
    CHECK_THROWS_WITH_AS(io::parse_idx(garbage, "g.gz"),
                         doctest::Contains(("3 bytes of trailing garbage after gzip member 3, from compressed byte " +
                                            std::to_string(multi.size())).c_str()),
                         Error);
    auto cut = gz_bytes(whole);
    cut.resize(cut.size() - 5);  // inside the trailer
    CHECK_THROWS_WITH_AS(io::parse_idx(cut, "c.gz"), doctest::Contains("truncated at compressed byte"), Error);
    // A header announcing 2^31 elements in a few bytes is refused before anything is allocated.
    const std::vector<uint8_t> claim = {0, 0, 8, 1, 0x80, 0, 0, 0};
    CHECK_THROWS_WITH_AS(io::parse_idx(claim, "claim"), doctest::Contains("announces 2147483648 elements, but the file holds 0"),
                         Error);
    CHECK_THROWS_WITH_AS(io::parse_idx(gz_bytes(claim), "claim.gz"), doctest::Contains("compressed bytes can hold at most"),
                         Error);
    auto corrupt = gz_bytes(whole);
    corrupt[corrupt.size() - 8] ^= 0xff;  // the CRC
    CHECK_THROWS_WITH_AS(io::parse_idx(corrupt, "x.gz"), doctest::Contains("corrupt gzip data"), Error);
    // Plain and gzip content alike: trailing bytes after the announced elements, with the offset.
    auto extra = whole;
    extra.push_back(1);
    CHECK_THROWS_WITH_AS(io::parse_idx(extra, "e"), doctest::Contains("(from byte 18)"), Error);
    CHECK_THROWS_WITH_AS(io::parse_idx(gz_bytes(extra), "e.gz"), doctest::Contains("(from decompressed byte 18)"),
                         Error);
    auto short_data = whole;
    short_data.pop_back();
    CHECK_THROWS_WITH_AS(io::parse_idx(short_data, "s"),
                         doctest::Contains("'s' is truncated: the header announces 6 elements, but the file holds 5 bytes"),
                         Error);
    // Truncated compressed data is found while decompressing, with the offsets.
    auto short_gz = gz_bytes(short_data);
    CHECK_THROWS_WITH_AS(io::parse_idx(short_gz, "s.gz"), doctest::Contains("the data at decompressed byte 12 needs 6 bytes, only 5"),
                         Error);
}

TEST_CASE("pipes and FIFOs: images, .npy, IDX and CIFAR read from a stream") {
    TempDir dir("fifo");
    std::vector<uint8_t> rgb(3 * 2 * 3);
    for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 10);
    const std::vector<uint8_t> png = io::encode_png(rgb.data(), 2, 3, 3);
    const Tensor img = through_fifo(dir, png, [](const std::string& p) { return io::load_image(p); });
    CHECK(img.shape() == Shape{3, 3, 2});
    CHECK(img.to_vector<float>()[1] == doctest::Approx(30 / 255.f));  // red of pixel (0, 1)

    const Tensor t = from_vector(std::vector<float>{1.f, 2.f, 3.f}, Shape{3});
    const Tensor u = through_fifo(dir, io::encode_npy(t), [](const std::string& p) { return io::load_npy(p); });
    CHECK(u.to_vector<float>() == t.to_vector<float>());

    const io::IdxArray a = through_fifo(dir, gz_bytes(idx_bytes({2}, {3, 4})),
                                        [](const std::string& p) { return io::read_idx(p); });
    CHECK(a.data == std::vector<uint8_t>{3, 4});

    std::vector<uint8_t> rec(3073, 7);
    rec[0] = 2;
    const io::Dataset d = through_fifo(dir, rec, [](const std::string& p) {
        return io::load_cifar({p}, 10, false, false, {}, "c");
    });
    CHECK(d.labels.to_vector<int32_t>() == std::vector<int32_t>{2});
    CHECK(d.images.to_vector<float>()[5] == doctest::Approx(7 / 255.f));
    CHECK_THROWS_WITH_AS(io::read_file(dir.path()), doctest::Contains("it is a folder"), Error);
}

TEST_CASE("images: sizes checked from the header before decoding; PNM and PNG extents per their formats") {
    // A PNG whose IHDR claims 16384 x 16384 (the decompression bomb of issue 13 needs no more than that:
    // its size is refused before any pixel is inflated).
    std::vector<uint8_t> rgb(3, 0);
    std::vector<uint8_t> bomb = io::encode_png(rgb.data(), 1, 1, 3);
    auto set_be32 = [](std::vector<uint8_t>& b, size_t at, uint32_t v) {
        for (int i = 0; i < 4; ++i) b[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (24 - 8 * i));
    };
    set_be32(bomb, 16, 16384);
    set_be32(bomb, 20, 16384);
    CHECK_THROWS_WITH_AS(io::decode_image(bomb, "bomb.png"),
                         doctest::Contains("16384x16384 = 268435456 pixels, more than the limit of 67108864"), Error);
    CHECK_THROWS_WITH_AS(io::decode_image(bomb, "bomb.png"), doctest::Contains("GB_MAX_IMAGE_PIXELS"), Error);
    set_be32(bomb, 16, 16385);
    set_be32(bomb, 20, 1);
    CHECK_THROWS_WITH_AS(io::decode_image(bomb, "wide.png"), doctest::Contains("1 to 16384 pixels per side"), Error);
    // The limit is a parameter, and an environment variable.
    const std::vector<uint8_t> small = io::encode_png(std::vector<uint8_t>(4 * 4).data(), 4, 4, 1);
    CHECK(io::decode_image(small, "s.png").shape() == Shape{1, 4, 4});
    CHECK_THROWS_WITH_AS(io::decode_image(small, "s.png", 0, nullptr, 15), doctest::Contains("limit of 15"), Error);
    ::setenv("GB_MAX_IMAGE_PIXELS", "10", 1);
    CHECK_THROWS_WITH_AS(io::decode_image(small, "s.png"), doctest::Contains("limit of 10"), Error);
    ::setenv("GB_MAX_IMAGE_PIXELS", "ten", 1);
    CHECK_THROWS_WITH_AS(io::decode_image(small, "s.png"), doctest::Contains("not a positive integer"), Error);
    ::unsetenv("GB_MAX_IMAGE_PIXELS");

    // PNG: bytes after IEND, or a file cut inside a chunk.
    auto tail = small;
    tail.push_back(0);
    CHECK_THROWS_WITH_AS(io::decode_image(tail, "t.png"),
                         doctest::Contains(("1 bytes of trailing garbage after the PNG's IEND chunk (from byte " +
                                            std::to_string(small.size())).c_str()),
                         Error);
    auto cut = small;
    cut.resize(cut.size() - 6);
    CHECK_THROWS_WITH_AS(io::decode_image(cut, "c.png"), doctest::Contains("is truncated: the PNG chunk at byte"),
                         Error);

    // PGM: a header claiming 16384 x 16384 with 784 bytes of data; 28 x 28 with too few or too many
    // bytes; a maximum value other than 255 scales by it; a sample above it is refused.
    auto pgm = [](const std::string& head, size_t n, uint8_t v) {
        std::vector<uint8_t> b(head.begin(), head.end());
        b.insert(b.end(), n, v);
        return b;
    };
    CHECK_THROWS_WITH_AS(io::decode_image(pgm("P5\n16384 16384\n255\n", 784, 1), "big.pgm"),
                         doctest::Contains("more than the limit"), Error);
    CHECK_THROWS_WITH_AS(io::decode_image(pgm("P5\n# a comment\n28 28\n255\n", 700, 1), "short.pgm"),
                         doctest::Contains("needs 784 bytes of pixels from byte 25, the file has 700"), Error);
    CHECK_THROWS_WITH_AS(io::decode_image(pgm("P5 28 28 255\n", 790, 1), "long.pgm"),
                         doctest::Contains("6 bytes of trailing garbage after its pixels (from byte 797"), Error);
    const Tensor g = io::decode_image(pgm("P5 2 2 15\n", 4, 5), "max15.pgm");
    CHECK(g.to_vector<float>()[0] == doctest::Approx(5.f / 15.f));
    CHECK_THROWS_WITH_AS(io::decode_image(pgm("P5 2 2 15\n", 4, 16), "over.pgm"),
                         doctest::Contains("above the maximum value 15"), Error);
    // 16-bit PGM: big-endian samples (stb 2.27 hands them over unswapped) scaled by the maximum value.
    std::vector<uint8_t> p16 = pgm("P5 2 1 1000\n", 0, 0);
    p16.insert(p16.end(), {0x01, 0xF4, 0x03, 0xE8});  // 500, 1000
    const Tensor g16 = io::decode_image(p16, "16.pgm");
    CHECK(g16.to_vector<float>() == std::vector<float>{0.5f, 1.f});
    CHECK_THROWS_WITH_AS(io::decode_image({'P', 'S', 'D', '8'}, "x.psd"), doctest::Contains("not a PNG, JPEG"), Error);
}

TEST_CASE(".npy and CIFAR: truncation and trailing bytes name the byte offset") {
    const std::vector<uint8_t> npy = io::encode_npy(from_vector(std::vector<float>{1.f, 2.f}, Shape{2}));
    auto longer = npy;
    longer.push_back(0);
    CHECK_THROWS_WITH_AS(io::decode_npy(longer, "l.npy"),
                         doctest::Contains("1 more than shape [2] of <f4 needs: trailing garbage from byte 136"),
                         Error);
    auto shorter = npy;
    shorter.pop_back();
    CHECK_THROWS_WITH_AS(io::decode_npy(shorter, "s.npy"),
                         doctest::Contains("needs 8 bytes of data from byte 128, the file has 7"), Error);
    std::vector<uint8_t> two(2 * 3073 - 10, 1);
    CHECK_THROWS_WITH_AS(io::parse_cifar({two}, {"b.bin"}, 10, false, false, {}, "c"),
                         doctest::Contains("record 1 at byte 3073 is truncated (3063 of 3073 bytes"), Error);
    std::vector<uint8_t> label(3073, 0);
    label[0] = 10;
    CHECK_THROWS_WITH_AS(io::parse_cifar({label}, {"b.bin"}, 10, false, false, {}, "c"),
                         doctest::Contains("label 10 of record 0 (byte 0) is outside [0, 10)"), Error);
}

// The regression inputs of the fuzz corpora (fuzz/corpus/<harness>/regression-*): the malformed files
// of issue 13 that were accepted or zero-filled (a 16384 x 16384 PNG bomb, a PGM claiming more pixels
// than it holds, gzip with trailing garbage ...), and every input a harness ever crashed on, minimised
// (add it there and raise kFuzzRegressions). Each must be a gb::Error from its reader.
constexpr int kFuzzRegressions = 10;

TEST_CASE("fuzz regressions: known bad inputs of the fuzz corpora are gb::Errors") {
    const char* data = std::getenv("GB_TEST_DATA");
    REQUIRE(data != nullptr);
    const std::filesystem::path corpus = std::filesystem::path(data) / ".." / ".." / "fuzz" / "corpus";
    REQUIRE(std::filesystem::is_directory(corpus));
    const std::map<std::string, std::function<void(const std::vector<uint8_t>&)>> readers = {
        {"safetensors", [](const auto& b) { io::parse_safetensors(b, "regression"); }},
        {"npy", [](const auto& b) { io::decode_npy(b, "regression"); }},
        {"idx", [](const auto& b) { io::parse_idx(b, "regression"); }},
        {"cifar", [](const auto& b) { io::parse_cifar({b}, {"regression"}, 10, false, false, {}, "c"); }},
        {"image", [](const auto& b) { io::decode_image(b, "regression"); }},
    };
    int cases = 0;
    for (const auto& [harness, read] : readers) {
        if (!std::filesystem::is_directory(corpus / harness)) continue;
        for (const auto& e : std::filesystem::directory_iterator(corpus / harness)) {
            if (e.path().filename().string().rfind("regression-", 0) != 0) continue;
            CAPTURE(e.path().string());
            CHECK_THROWS_AS(read(io::read_file(e.path().string())), Error);
            ++cases;
        }
    }
    MESSAGE(cases, " fuzz regression inputs");
    CHECK(cases >= kFuzzRegressions);
}

TEST_CASE("csv_field: RFC 4180 quoting only where a field needs it") {
    CHECK(io::csv_field("lrp:epsilon-plus-flat") == "lrp:epsilon-plus-flat");
    CHECK(io::csv_field("") == "");
    CHECK(io::csv_field("occlusion:window=7,stride=7") == "\"occlusion:window=7,stride=7\"");
    CHECK(io::csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
    CHECK(io::csv_field("two\nlines") == "\"two\nlines\"");
}
