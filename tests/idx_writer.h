// Writes small IDX datasets (MNIST layout, optionally gzip-compressed) for tests.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "temp_dir.h"

namespace gb::testing {

inline std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
    std::vector<uint8_t> b = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
    for (uint32_t d : dims)
        for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

inline void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
}

// A fashion-mnist-like folder: n_train / n_test images of size x size, 10 classes.
// Class k images are bright in a k-dependent block, so a model can learn them.
inline void write_fake_mnist(const std::string& dir, int n_train, int n_test, int size, bool gz) {
    auto make = [&](const std::string& prefix, int n, uint32_t seed) {
        std::vector<uint8_t> img(static_cast<size_t>(n * size * size)), lab(static_cast<size_t>(n));
        uint32_t s = seed;
        for (int i = 0; i < n; ++i) {
            const int k = i % 10;
            lab[static_cast<size_t>(i)] = static_cast<uint8_t>(k);
            for (int p = 0; p < size * size; ++p) {
                s = s * 1664525u + 1013904223u;
                const int y = p / size, x = p % size;
                const bool on = (y * 5 / size) == k / 2 && (x * 2 / size) == k % 2;
                img[static_cast<size_t>(i * size * size + p)] = static_cast<uint8_t>((on ? 160 : 20) + (s >> 27));
            }
        }
        const std::string ext = gz ? ".gz" : "";
        const auto ib = idx_bytes({static_cast<uint32_t>(n), static_cast<uint32_t>(size), static_cast<uint32_t>(size)}, img);
        const auto lb = idx_bytes({static_cast<uint32_t>(n)}, lab);
        if (gz) {
            write_gz(dir + "/" + prefix + "-images-idx3-ubyte" + ext, ib);
            write_gz(dir + "/" + prefix + "-labels-idx1-ubyte" + ext, lb);
        } else {
            write_bytes(dir + "/" + prefix + "-images-idx3-ubyte", ib);
            write_bytes(dir + "/" + prefix + "-labels-idx1-ubyte", lb);
        }
    };
    make("train", n_train, 1);
    make("t10k", n_test, 2);
}

}  // namespace gb::testing
