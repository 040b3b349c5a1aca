// Tensor: a cheap shared handle to a contiguous row-major block of one dtype on
// one device, plus the autograd fields (requires_grad, grad, grad_fn, hooks).
// Views (view(), narrow()) share storage and stay contiguous; anything else is
// an explicit copy. Member functions here are data-level and not recorded by
// autograd: differentiable operations live in autograd/ and layers/.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "device.h"
#include "dtype.h"
#include "error.h"
#include "shape.h"
#include "storage.h"

namespace gb {

namespace autograd {
class Node;
}

class Tensor;

// A gradient hook sees the gradient arriving at a tensor and may replace it.
using GradHook = std::function<std::optional<Tensor>(const Tensor& grad)>;

struct HookList {
    int next_id = 0;
    std::vector<std::pair<int, GradHook>> hooks;
    // Out of line: instantiating vector<pair<int, function<optional<Tensor>(...)>>>::emplace_back here, where
    // Tensor is still incomplete, is rejected by clang with libstdc++ 12 (optional<T> needs T's traits).
    int add(GradHook h);
    bool remove(int id);
};

struct TensorImpl {
    std::shared_ptr<Storage> storage;
    int64_t offset = 0;  // in elements
    Shape shape;
    DType dtype = DType::Float32;
    bool requires_grad = false;
    std::shared_ptr<TensorImpl> grad;
    std::shared_ptr<autograd::Node> grad_fn;
    std::shared_ptr<HookList> hooks;  // created on first register_hook
};

class Tensor {
public:
    Tensor() = default;
    // Uninitialised storage of the given shape.
    explicit Tensor(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
    explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

    bool defined() const { return impl_ != nullptr; }
    const Shape& shape() const { return impl().shape; }
    int64_t rank() const { return shape().rank(); }
    int64_t dim(int64_t i) const { return shape()[i]; }
    int64_t numel() const { return shape().numel(); }
    DType dtype() const { return impl().dtype; }
    Device device() const { return impl().storage->device(); }
    size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }

    // Raw element pointer (device memory for CUDA tensors); checks the dtype.
    template <typename T> T* data();
    template <typename T> const T* data() const;
    void* raw_data();
    const void* raw_data() const;

    // Autograd fields.
    bool requires_grad() const { return impl().requires_grad; }
    // Marks a leaf as needing a gradient; only float32 leaves may.
    Tensor& set_requires_grad(bool on = true);
    bool is_leaf() const { return impl().grad_fn == nullptr; }
    Tensor grad() const { return Tensor(impl().grad); }
    void set_grad(const Tensor& g) { impl().grad = g.impl_; }
    const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }
    void set_grad_fn(std::shared_ptr<autograd::Node> fn);
    // Gradient hooks: see (and may replace) the gradient arriving here; returns a handle.
    int register_hook(GradHook hook);
    bool remove_hook(int handle);
    const std::shared_ptr<HookList>& hooks() const { return impl().hooks; }
    std::shared_ptr<HookList> ensure_hooks();

    // Views sharing storage (not recorded by autograd).
    Tensor view(const Shape& shape) const;
    Tensor narrow(int64_t start, int64_t length) const;  // along dim 0
    Tensor detach() const;

    // Copies.
    Tensor clone() const;
    Tensor to(Device device) const;  // returns *this when already there
    void copy_from(const Tensor& src);  // same shape and dtype, any devices
    template <typename T> std::vector<T> to_vector() const;
    float item() const;  // single-element float32 tensor

    // Bumped by in-place writes (optimizer steps, copy_from, fill).
    uint64_t version() const { return impl().storage->version(); }
    void bump_version() { impl().storage->bump_version(); }
    bool shares_storage_with(const Tensor& o) const { return impl().storage == o.impl().storage; }

    std::string str(int64_t max_items = 16) const;
    TensorImpl& impl() const;
    const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
    bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

private:
    void check_dtype(DType want) const;
    std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& out, const Tensor& t);

// Elements that are NaN or infinite (0 for integer tensors); any device.
int64_t count_non_finite(const Tensor& t);

// Raises gb::Error naming `what` unless `t` has exactly `shape`.
void check_shape(const Tensor& t, const Shape& shape, const char* what);
// Raises unless all tensors are on the same device.
void check_same_device(const Tensor& a, const Tensor& b, const char* what);

template <typename T> T* Tensor::data() {
    check_dtype(dtype_of<T>());
    return static_cast<T*>(raw_data());
}
template <typename T> const T* Tensor::data() const {
    check_dtype(dtype_of<T>());
    return static_cast<const T*>(raw_data());
}

}  // namespace gb
