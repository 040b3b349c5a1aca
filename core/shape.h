// Shape: the dimensions of a contiguous row-major tensor (NCHW for images).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace gb {

class Shape {
public:
    Shape() = default;
    Shape(std::initializer_list<int64_t> dims) : dims_(dims) { validate(); }
    explicit Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) { validate(); }

    int64_t rank() const { return static_cast<int64_t>(dims_.size()); }
    // Dimension i; negative i counts from the end (-1 = last). Out of range is a gb::Error.
    int64_t operator[](int64_t i) const { return dims_[static_cast<size_t>(norm_axis(i))]; }
    int64_t numel() const {
        int64_t n = 1;
        for (int64_t d : dims_) n *= d;
        return n;
    }
    const std::vector<int64_t>& dims() const { return dims_; }
    // Axis i normalised to [0, rank); raises gb::Error naming the shape otherwise.
    int64_t norm_axis(int64_t i) const;
    // Product of dims in [begin, end).
    int64_t prod(int64_t begin, int64_t end) const;
    std::string str() const;

    bool operator==(const Shape& o) const { return dims_ == o.dims_; }
    bool operator!=(const Shape& o) const { return dims_ != o.dims_; }

private:
    void validate() const;
    std::vector<int64_t> dims_;
};

}  // namespace gb
