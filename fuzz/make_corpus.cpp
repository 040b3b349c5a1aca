// Writes the seed corpora of the fuzz harnesses: small valid files of each format (a few KB at most),
// so that libFuzzer starts from inputs that reach deep into each reader. Run by fuzz/make_corpus.sh;
// the results are committed under fuzz/corpus/<harness>/.
#include <stb_image_write.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/factory.h"
#include "io/npy.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

namespace {

std::string root;

void put(const std::string& harness, const std::string& name, const Bytes& b) {
    fs::create_directories(root + "/" + harness);
    std::ofstream out(root + "/" + harness + "/" + name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes gzip(const Bytes& in) {
    z_stream z{};
    deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    Bytes out(deflateBound(&z, static_cast<uLong>(in.size())) + 32);
    z.next_in = const_cast<Bytef*>(in.data());
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

Bytes idx(const std::vector<uint32_t>& dims) {
    Bytes b = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
    size_t n = 1;
    for (uint32_t d : dims) {
        n *= d;
        for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
    }
    for (size_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(i * 37));
    return b;
}

Bytes pixels(int w, int h, int c) {
    Bytes p(static_cast<size_t>(w * h * c));
    for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>(i * 29 + 3);
    return p;
}

Bytes encoded(int (*write)(stbi_write_func*, void*, int, int, int, const void*), int w, int h, int c) {
    Bytes out;
    const Bytes p = pixels(w, h, c);
    write([](void* ctx, void* d, int n) {
        auto* v = static_cast<Bytes*>(ctx);
        v->insert(v->end(), static_cast<uint8_t*>(d), static_cast<uint8_t*>(d) + n);
    }, &out, w, h, c, p.data());
    return out;
}

int png(stbi_write_func* f, void* c, int w, int h, int n, const void* d) {
    return stbi_write_png_to_func(f, c, w, h, n, d, w * n);
}

}  // namespace

int main(int argc, char** argv) {
    root = argc > 1 ? argv[1] : "fuzz/corpus";
    using namespace gb;
    // safetensors: F32 and I32 with metadata, an empty tensor and a scalar, an I64 tensor.
    put("safetensors", "f32_i32_meta", io::serialize_safetensors(
        {{"conv.weight", from_vector(std::vector<float>{0.5f, -1.f, 2.f, 3.f, 4.f, 5.f}, Shape{1, 1, 2, 3})},
         {"labels", from_vector(std::vector<int32_t>{1, 2, 3}, Shape{3})}}, {{"format", "pt"}, {"arch", "vgg"}}));
    put("safetensors", "empty_and_scalar", io::serialize_safetensors(
        {{"empty", Tensor(Shape{0, 4})}, {"scalar", from_vector(std::vector<float>{7.f}, Shape{})},
         {"w", from_vector(std::vector<float>{1.f, 2.f}, Shape{2})}}));
    {
        const std::string h = R"({"b":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})";
        Bytes b(8, 0);
        b[0] = static_cast<uint8_t>(h.size());
        b.insert(b.end(), h.begin(), h.end());
        for (int64_t v : {int64_t(5), int64_t(-6)})
            for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i)));
        put("safetensors", "i64", b);
    }
    // .npy: float32 vector, int32 matrix, an empty array, a scalar, a version 2.0 header.
    put("npy", "f4_vector", io::encode_npy(from_vector(std::vector<float>{1.f, -2.f, 3.5f}, Shape{3})));
    put("npy", "i4_matrix", io::encode_npy(from_vector(std::vector<int32_t>{1, 2, 3, 4, 5, 6}, Shape{2, 3})));
    put("npy", "empty", io::encode_npy(Tensor(Shape{0, 2})));
    put("npy", "scalar", io::encode_npy(from_vector(std::vector<float>{4.f}, Shape{})));
    {
        Bytes v2 = text("\x93NUMPY\x02");
        v2.push_back(0);
        const std::string dict = "{'shape': (2,), 'fortran_order': False, 'descr': '<i4'}";
        std::string padded = dict + std::string(64 - (12 + dict.size() + 1) % 64, ' ') + "\n";
        for (int i = 0; i < 4; ++i) v2.push_back(static_cast<uint8_t>(padded.size() >> (8 * i)));
        v2.insert(v2.end(), padded.begin(), padded.end());
        for (int i = 0; i < 8; ++i) v2.push_back(static_cast<uint8_t>(i == 0 ? 9 : 0));
        put("npy", "v2_i4", v2);
    }
    // IDX: labels, images plain and gzip, a two-member gzip file.
    put("idx", "labels", idx({10}));
    put("idx", "images", idx({3, 5, 4}));
    put("idx", "images.gz", gzip(idx({2, 6, 6})));
    {
        const Bytes whole = idx({4, 3});
        Bytes m = gzip(Bytes(whole.begin(), whole.begin() + 7));
        const Bytes second = gzip(Bytes(whole.begin() + 7, whole.end()));
        m.insert(m.end(), second.begin(), second.end());
        put("idx", "two_members.gz", m);
    }
    // CIFAR: one CIFAR-10 record (3073 bytes), one CIFAR-100 record (3074 bytes).
    {
        Bytes r10 = pixels(32, 32, 3), r100 = pixels(32, 32, 3);
        r10.insert(r10.begin(), 7);
        r100.insert(r100.begin(), {3, 42});
        put("cifar", "cifar10_record", r10);
        put("cifar", "cifar100_record", r100);
    }
    // Images: PNG grey / grey+alpha / RGB / RGBA, JPEG, BMP, TGA, GIF, PGM, PPM, 16-bit PGM.
    put("image", "grey.png", encoded(png, 5, 4, 1));
    put("image", "grey_alpha.png", encoded(png, 3, 3, 2));
    put("image", "rgb.png", encoded(png, 4, 3, 3));
    put("image", "rgba.png", encoded(png, 2, 2, 4));
    put("image", "rgb.jpg", encoded([](stbi_write_func* f, void* c, int w, int h, int n, const void* d) {
        return stbi_write_jpg_to_func(f, c, w, h, n, d, 90);
    }, 8, 8, 3));
    put("image", "rgb.bmp", encoded(stbi_write_bmp_to_func, 3, 2, 3));
    put("image", "rgb.tga", encoded(stbi_write_tga_to_func, 3, 2, 3));
    // The smallest GIF: 1x1, a two-colour table, one LZW-coded pixel.
    put("image", "one.gif", Bytes{'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0, 255, 255, 255,
                                  0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, 0x3b});
    {
        Bytes pgm = text("P5\n# comment\n4 3\n255\n"), ppm = text("P6 2 2 100\n"), p16 = text("P5 2 2 1000\n");
        const Bytes g = pixels(4, 3, 1);
        pgm.insert(pgm.end(), g.begin(), g.end());
        for (int i = 0; i < 12; ++i) ppm.push_back(static_cast<uint8_t>(i * 8));
        for (int i = 0; i < 4; ++i) p16.insert(p16.end(), {static_cast<uint8_t>(i), static_cast<uint8_t>(i * 50)});
        put("image", "grey.pgm", pgm);
        put("image", "colour_max100.ppm", ppm);
        put("image", "grey16.pgm", p16);
    }
    // Method specs (the parser takes any text).
    const char* specs[] = {"lrp:epsilon-plus-flat", "lrp:epsilon-gamma-box,epsilon=0.25,gamma=0.5", "gradcam",
                           "gradcam:features.7", "scorecam", "saliency", "smoothgrad:samples=25,noise=0.15,seed=3",
                           "ig:steps=50,rule=gausslegendre", "ig:steps=32,rule=riemann_trapezoid",
                           "occlusion:window=4,stride=4,baseline=0.5", "lime:samples=100,segments=25,compactness=0.1",
                           "kernelshap:segments=25", "random:seed=1", "pred", "3-5", "cat-dog", "cat"};
    int k = 0;
    for (const char* s : specs) put("method_spec", "spec" + std::to_string(k++), text(s));
    std::printf("corpus written to %s\n", root.c_str());
}
