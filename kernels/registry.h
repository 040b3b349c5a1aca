// Which backend computes on which device. Backends register themselves: each
// one's own source defines a registrar, `void register_<kind>_backend()`, that
// hands register_backend() a factory for its device type (kernels/cpu/registry.cpp,
// kernels/cuda/cuda_backend.cuh). kernels/registry.cpp names no backend.
//
// Why registrar functions and not static registrar objects: glassbox is a static
// library, and the linker copies an archive member into a program only when
// something references a symbol in it; a member that holds nothing but a static
// object's constructor would be dropped and its backend would silently be
// missing. So backend_for() calls register_builtin_backends() once, whose
// definition CMake generates per library from the list of backends built into
// it (gb_builtin_backends() in CMakeLists.txt); that call references each
// registrar and so keeps it, and no whole-archive linking is needed.
#pragma once

#include "../core/device.h"
#include "backend.h"

namespace gb::kernels {

// The backend of device `index` of one type, created on first use and kept for the program's life.
using BackendFactory = Backend& (*)(int index);

// Registers the factory of a device type; a second registration of one type raises gb::Error.
void register_backend(DeviceType type, BackendFactory factory);

// Calls the registrar of every backend built into this library (generated source).
void register_builtin_backends();

}  // namespace gb::kernels
