// NumPy (and DLPack) arrays <-> gb::Tensor for the Python module.
//
// In: a C-contiguous float32 array on the CPU becomes a tensor on the same memory
// (gb::borrow; the array is kept alive until the last tensor on it goes); anything
// else (another dtype, strides, a torch tensor that is not float32) is converted
// by nanobind first, which copies. Out: a tensor becomes a NumPy array on the
// tensor's own memory (the array holds a handle to it); tensors on a CUDA device
// are copied to the host first. Nothing here touches the GIL except where noted.
#pragma once

#include <nanobind/ndarray.h>

#include <vector>

#include "core/tensor.h"

namespace gb::python {

namespace nb = nanobind;

// What the module's functions accept as an input batch or map (float32, C order, CPU memory).
using InArray = nb::ndarray<const float, nb::c_contig, nb::device::cpu>;
// What they return.
using OutArray = nb::ndarray<nb::numpy, float>;

// A tensor on `a`'s memory (no copy), moved to `device` when that is not the CPU (a copy).
// Needs the GIL.
Tensor to_tensor(const InArray& a, Device device = Device::cpu());
// `to_tensor` for an input batch: rank 4 [N, C, H, W], or rank 3 [C, H, W] taken as N = 1;
// `what` names the argument in errors.
Tensor to_batch(const InArray& a, Device device, const char* what = "x");
// A NumPy array on the tensor's memory (a host copy first for a device tensor). Needs the GIL.
OutArray to_numpy(const Tensor& t);

// Per-sample values and curves (float64).
using Doubles = nb::ndarray<nb::numpy, double>;
// A NumPy array that owns `values`, of `shape` (default: [values.size()]). Needs the GIL.
Doubles to_numpy(std::vector<double> values, std::vector<size_t> shape = {});

}  // namespace gb::python
