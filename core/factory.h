// Tensor factories. Values are made on the host and copied to `device`.
// Random factories draw from a Generator (default: the process-wide one).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "rng.h"
#include "tensor.h"

namespace gb {

Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
Tensor ones(const Shape& shape, Device device = Device::cpu());
Tensor full(const Shape& shape, float value, Device device = Device::cpu());
Tensor zeros_like(const Tensor& t);
// [start, start + step, ...) below `end`, float32.
Tensor arange(float start, float end, float step = 1.f, Device device = Device::cpu());
Tensor uniform(const Shape& shape, float lo = 0.f, float hi = 1.f, Generator& gen = default_generator(),
               Device device = Device::cpu());
Tensor normal(const Shape& shape, float mean = 0.f, float stddev = 1.f, Generator& gen = default_generator(),
              Device device = Device::cpu());
Tensor from_vector(const std::vector<float>& values, const Shape& shape, Device device = Device::cpu());
// A tensor on memory owned elsewhere (`data` holds shape.numel() values of `dtype`, contiguous);
// `release` runs once, when the last tensor on it is gone. Nothing is copied.
Tensor borrow(void* data, const Shape& shape, DType dtype, Device device, std::function<void()> release);
Tensor from_vector(const std::vector<int32_t>& values, const Shape& shape, Device device = Device::cpu());
// Sets every element of a float32 tensor (in place; bumps the version).
void fill(Tensor& t, float value);

}  // namespace gb
