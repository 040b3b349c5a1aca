#include "core/shape.h"

#include "core/error.h"

namespace gb {

void Shape::validate() const {
    for (int64_t d : dims_) GB_CHECK(d >= 0, "shape ", str(), " has a negative dimension");
}

int64_t Shape::norm_axis(int64_t i) const {
    const int64_t r = rank();
    const int64_t a = i < 0 ? i + r : i;
    GB_CHECK(a >= 0 && a < r, "axis ", i, " is out of range for shape ", str(), " (rank ", r, ")");
    return a;
}

int64_t Shape::prod(int64_t begin, int64_t end) const {
    int64_t p = 1;
    for (int64_t i = begin; i < end; ++i) p *= dims_[static_cast<size_t>(i)];
    return p;
}

std::string Shape::str() const {
    std::string s = "[";
    for (size_t i = 0; i < dims_.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(dims_[i]);
    }
    return s + "]";
}

}  // namespace gb
