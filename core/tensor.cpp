#include "core/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <ostream>
#include <sstream>

namespace gb {

int HookList::add(GradHook h) {
    hooks.emplace_back(next_id, std::move(h));
    return next_id++;
}

bool HookList::remove(int id) {
    auto it = std::find_if(hooks.begin(), hooks.end(), [&](const auto& h) { return h.first == id; });
    if (it == hooks.end()) return false;
    hooks.erase(it);
    return true;
}

Tensor::Tensor(const Shape& shape, DType dtype, Device device) : impl_(std::make_shared<TensorImpl>()) {
    impl_->storage = std::make_shared<Storage>(static_cast<size_t>(shape.numel()) * dtype_size(dtype), device);
    impl_->shape = shape;
    impl_->dtype = dtype;
}

TensorImpl& Tensor::impl() const {
    GB_CHECK(impl_ != nullptr, "operation on an undefined (empty) Tensor");
    return *impl_;
}

void Tensor::check_dtype(DType want) const {
    GB_CHECK(dtype() == want, "tensor of shape ", shape().str(), " holds ", dtype_name(dtype()),
             ", accessed as ", dtype_name(want));
}

void* Tensor::raw_data() {
    auto& i = impl();
    return static_cast<char*>(i.storage->data()) + i.offset * static_cast<int64_t>(dtype_size(i.dtype));
}
const void* Tensor::raw_data() const {
    const auto& i = impl();
    return static_cast<const char*>(i.storage->data()) + i.offset * static_cast<int64_t>(dtype_size(i.dtype));
}

Tensor& Tensor::set_requires_grad(bool on) {
    GB_CHECK(!on || dtype() == DType::Float32, "only float32 tensors can require gradients (got ",
             dtype_name(dtype()), ")");
    GB_CHECK(is_leaf(), "set_requires_grad on a non-leaf tensor: it already has a gradient function");
    impl().requires_grad = on;
    return *this;
}

void Tensor::set_grad_fn(std::shared_ptr<autograd::Node> fn) {
    impl().grad_fn = std::move(fn);
    impl().requires_grad = impl().grad_fn != nullptr;
}

std::shared_ptr<HookList> Tensor::ensure_hooks() {
    if (!impl().hooks) impl().hooks = std::make_shared<HookList>();
    return impl().hooks;
}

int Tensor::register_hook(GradHook hook) {
    GB_CHECK(requires_grad(), "register_hook on a tensor that does not require a gradient");
    return ensure_hooks()->add(std::move(hook));
}

bool Tensor::remove_hook(int handle) { return impl().hooks && impl().hooks->remove(handle); }

Tensor Tensor::view(const Shape& shape) const {
    GB_CHECK(shape.numel() == numel(), "cannot view a tensor of shape ", this->shape().str(), " (", numel(),
             " elements) as ", shape.str(), " (", shape.numel(), " elements)");
    auto v = std::make_shared<TensorImpl>();
    v->storage = impl().storage;
    v->offset = impl().offset;
    v->shape = shape;
    v->dtype = dtype();
    return Tensor(v);
}

Tensor Tensor::narrow(int64_t start, int64_t length) const {
    GB_CHECK(rank() >= 1, "narrow on a rank-0 tensor");
    GB_CHECK(start >= 0 && length >= 0 && start + length <= dim(0), "narrow(", start, ", ", length,
             ") is out of range for dim 0 of shape ", shape().str());
    std::vector<int64_t> dims = shape().dims();
    dims[0] = length;
    auto v = std::make_shared<TensorImpl>();
    v->storage = impl().storage;
    v->offset = impl().offset + start * shape().prod(1, rank());
    v->shape = Shape(dims);
    v->dtype = dtype();
    return Tensor(v);
}

Tensor Tensor::detach() const { return view(shape()); }

Tensor Tensor::clone() const {
    Tensor out(shape(), dtype(), device());
    copy_bytes(out.raw_data(), device(), raw_data(), device(), nbytes());
    return out;
}

Tensor Tensor::to(Device device) const {
    if (device == this->device()) return *this;
    Tensor out(shape(), dtype(), device);
    copy_bytes(out.raw_data(), device, raw_data(), this->device(), nbytes());
    return out;
}

void Tensor::copy_from(const Tensor& src) {
    GB_CHECK(src.shape() == shape() && src.dtype() == dtype(), "copy_from: source ", src.shape().str(), " ",
             dtype_name(src.dtype()), " does not match destination ", shape().str(), " ", dtype_name(dtype()));
    copy_bytes(raw_data(), device(), src.raw_data(), src.device(), nbytes());
    bump_version();
}

template <typename T> std::vector<T> Tensor::to_vector() const {
    check_dtype(dtype_of<T>());
    std::vector<T> out(static_cast<size_t>(numel()));
    copy_bytes(out.data(), Device::cpu(), raw_data(), device(), nbytes());
    return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;

float Tensor::item() const {
    GB_CHECK(numel() == 1, "item() needs a single-element tensor, got shape ", shape().str());
    return to_vector<float>()[0];
}

int64_t count_non_finite(const Tensor& t) {
    if (!t.defined() || t.dtype() != DType::Float32) return 0;
    const Tensor c = t.to(Device::cpu());
    const float* p = c.data<float>();
    int64_t n = 0;
    for (int64_t i = 0; i < c.numel(); ++i) n += !std::isfinite(p[i]);
    return n;
}

std::string Tensor::str(int64_t max_items) const {
    if (!defined()) return "Tensor(undefined)";
    std::ostringstream out;
    out << "Tensor(shape=" << shape().str() << ", dtype=" << dtype_name(dtype()) << ", device=" << device().str();
    if (requires_grad()) out << ", requires_grad";
    out << ", values=[";
    const int64_t n = std::min(numel(), max_items);
    out << std::setprecision(6);
    if (dtype() == DType::Float32) {
        const auto v = to_vector<float>();
        for (int64_t i = 0; i < n; ++i) out << (i ? ", " : "") << v[static_cast<size_t>(i)];
    } else {
        const auto v = to_vector<int32_t>();
        for (int64_t i = 0; i < n; ++i) out << (i ? ", " : "") << v[static_cast<size_t>(i)];
    }
    if (numel() > n) out << ", ... (" << numel() << " total)";
    out << "])";
    return out.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& t) { return out << t.str(); }

void check_shape(const Tensor& t, const Shape& shape, const char* what) {
    GB_CHECK(t.defined(), what, ": tensor is undefined, expected shape ", shape.str());
    GB_CHECK(t.shape() == shape, what, ": expected shape ", shape.str(), ", got ", t.shape().str());
}

void check_same_device(const Tensor& a, const Tensor& b, const char* what) {
    GB_CHECK(a.device() == b.device(), what, ": tensors are on different devices (", a.device().str(), " and ",
             b.device().str(), "); move one with .to(device)");
}

}  // namespace gb
