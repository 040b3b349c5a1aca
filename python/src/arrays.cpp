#include "arrays.h"

#include <utility>
#include <vector>

#include "core/error.h"
#include "core/factory.h"

namespace gb::python {

Tensor to_tensor(const InArray& a, Device device) {
    std::vector<int64_t> dims;
    for (size_t i = 0; i < a.ndim(); ++i) dims.push_back(static_cast<int64_t>(a.shape(i)));
    // The copy of the ndarray handle keeps the Python object alive; it is dropped with the GIL held,
    // from whichever thread frees the last tensor (compute runs with the GIL released).
    auto* keep = new InArray(a);
    Tensor t = borrow(const_cast<float*>(a.data()), Shape(dims), DType::Float32, Device::cpu(), [keep] {
        nb::gil_scoped_acquire gil;
        delete keep;
    });
    return device.is_cpu() ? t : t.to(device);
}

Tensor to_batch(const InArray& a, Device device, const char* what) {
    GB_CHECK(a.ndim() == 3 || a.ndim() == 4, what, ": expected an image batch [N, C, H, W] or one image [C, H, W], got ",
             a.ndim(), " dimensions");
    Tensor t = to_tensor(a, device);
    if (a.ndim() == 3) t = t.view(Shape{1, t.dim(0), t.dim(1), t.dim(2)});
    return t;
}

OutArray to_numpy(const Tensor& t) {
    GB_CHECK(t.defined() && t.dtype() == DType::Float32, "to_numpy: float32 tensor expected");
    Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
    std::vector<size_t> shape;
    for (int64_t d : host.shape().dims()) shape.push_back(static_cast<size_t>(d));
    float* data = host.data<float>();
    auto* keep = new Tensor(std::move(host));
    nb::capsule owner(keep, [](void* p) noexcept { delete static_cast<Tensor*>(p); });
    return OutArray(data, shape.size(), shape.data(), owner);
}

Doubles to_numpy(std::vector<double> values, std::vector<size_t> shape) {
    if (shape.empty()) shape = {values.size()};
    auto* keep = new std::vector<double>(std::move(values));
    nb::capsule owner(keep, [](void* p) noexcept { delete static_cast<std::vector<double>*>(p); });
    return Doubles(keep->data(), shape.size(), shape.data(), owner);
}

}  // namespace gb::python
