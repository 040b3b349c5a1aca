// DType: element types a Tensor can hold. float32 for data and parameters,
// int32 for labels and pooling indices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace gb {

enum class DType : uint8_t { Float32, Int32 };

inline size_t dtype_size(DType) { return 4; }

inline const char* dtype_name(DType t) {
    switch (t) {
        case DType::Float32: return "float32";
        case DType::Int32: return "int32";
    }
    return "?";
}

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<int32_t>() { return DType::Int32; }

}  // namespace gb
