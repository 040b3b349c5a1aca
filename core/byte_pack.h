// Values as bytes and back, to send results between the ranks of a job (core/distributed.h): numbers as their
// raw bytes, exactly (the ranks run one program on one kind of machine; dist::init checks the first), vectors
// and strings with their length first. Unpacker refuses to read past the end (gb::Error naming `what`).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "error.h"

namespace gb::dist {

class Packer {
public:
    template <class T>
    void put(T v) {
        bytes.append(reinterpret_cast<const char*>(&v), sizeof v);
    }
    template <class T>
    void put(const std::vector<T>& v) {
        put(static_cast<int64_t>(v.size()));
        bytes.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
    }
    void put(const std::string& s) {
        put(static_cast<int64_t>(s.size()));
        bytes += s;
    }
    std::string bytes;
};

class Unpacker {
public:
    Unpacker(const std::string& s, std::string what) : s_(s), what_(std::move(what)) {}
    template <class T>
    T get() {
        T v;
        take(&v, sizeof v);
        return v;
    }
    template <class T>
    std::vector<T> get_vector() {
        std::vector<T> v(count(sizeof(T)));
        take(v.data(), v.size() * sizeof(T));
        return v;
    }
    std::string get_string() {
        std::string v(count(1), '\0');
        take(v.data(), v.size());
        return v;
    }
    bool done() const { return at_ == s_.size(); }

private:
    size_t count(size_t item) {
        const auto n = get<int64_t>();
        GB_CHECK(n >= 0 && static_cast<uint64_t>(n) <= (s_.size() - at_) / item, what_, " is cut short");
        return static_cast<size_t>(n);
    }
    void take(void* to, size_t n) {
        GB_CHECK(n <= s_.size() - at_, what_, " is cut short");
        if (n) std::memcpy(to, s_.data() + at_, n);
        at_ += n;
    }
    const std::string& s_;
    std::string what_;
    size_t at_ = 0;
};

}  // namespace gb::dist
