#include "core/factory.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "core/cuda_runtime.h"

namespace gb {

namespace {
template <typename T> Tensor from_host(const std::vector<T>& values, const Shape& shape, Device device) {
    GB_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "from_vector: ", values.size(),
             " values do not fill shape ", shape.str(), " (", shape.numel(), " elements)");
    Tensor t(shape, dtype_of<T>(), device);
    copy_bytes(t.raw_data(), device, values.data(), Device::cpu(), t.nbytes());
    return t;
}
}  // namespace

Tensor empty(const Shape& shape, DType dtype, Device device) { return Tensor(shape, dtype, device); }

Tensor zeros(const Shape& shape, DType dtype, Device device) {
    Tensor t(shape, dtype, device);
    if (device.is_cpu())
        std::memset(t.raw_data(), 0, t.nbytes());
    else
        cuda::memset_zero(t.raw_data(), t.nbytes(), device.index());
    return t;
}

Tensor ones(const Shape& shape, Device device) { return full(shape, 1.f, device); }

Tensor full(const Shape& shape, float value, Device device) {
    return from_host(std::vector<float>(static_cast<size_t>(shape.numel()), value), shape, device);
}

Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }

Tensor arange(float start, float end, float step, Device device) {
    GB_CHECK(step != 0.f, "arange: step must not be 0");
    const double n = std::ceil((static_cast<double>(end) - start) / step);
    const int64_t count = n > 0 ? static_cast<int64_t>(n) : 0;
    std::vector<float> v(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) v[static_cast<size_t>(i)] = start + step * static_cast<float>(i);
    return from_host(v, Shape{count}, device);
}

Tensor uniform(const Shape& shape, float lo, float hi, Generator& gen, Device device) {
    GB_CHECK(lo <= hi, "uniform: low ", lo, " is above high ", hi);
    std::vector<float> v(static_cast<size_t>(shape.numel()));
    for (auto& x : v) x = gen.uniform(lo, hi);
    return from_host(v, shape, device);
}

Tensor normal(const Shape& shape, float mean, float stddev, Generator& gen, Device device) {
    GB_CHECK(stddev >= 0.f, "normal: negative standard deviation ", stddev);
    std::vector<float> v(static_cast<size_t>(shape.numel()));
    for (auto& x : v) x = gen.normal(mean, stddev);
    return from_host(v, shape, device);
}

Tensor from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
    return from_host(values, shape, device);
}
Tensor from_vector(const std::vector<int32_t>& values, const Shape& shape, Device device) {
    return from_host(values, shape, device);
}

Tensor borrow(void* data, const Shape& shape, DType dtype, Device device, std::function<void()> release) {
    GB_CHECK(data != nullptr || shape.numel() == 0, "borrow: null data for a tensor of shape ", shape.str());
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = std::make_shared<Storage>(data, static_cast<size_t>(shape.numel()) * dtype_size(dtype), device,
                                              std::move(release));
    impl->shape = shape;
    impl->dtype = dtype;
    return Tensor(std::move(impl));
}

void fill(Tensor& t, float value) {
    GB_CHECK(t.dtype() == DType::Float32, "fill: float32 tensor expected, got ", dtype_name(t.dtype()));
    if (t.device().is_cpu()) {
        float* p = t.data<float>();
        std::fill(p, p + t.numel(), value);
        t.bump_version();
    } else {
        t.copy_from(full(t.shape(), value));
    }
}

}  // namespace gb
