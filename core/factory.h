// Tensor factories. Values are made on the host and copied to `device`.
// Random factories draw from a Generator (default: the process-wide one).
#pragma once

#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

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
Tensor from_vector(const std::vector<int32_t>& values, const Shape& shape, Device device = Device::cpu());
// Sets every element of a float32 tensor (in place; bumps the version).
void fill(Tensor& t, float value);

}  // namespace gb
