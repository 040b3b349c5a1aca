// backend_for(): the registered backend of a device type (kernels/registry.h).
#include "kernels/registry.h"

#include <array>

#include "core/error.h"

namespace gb::kernels {

namespace {

constexpr size_t kDeviceTypes = 2;  // DeviceType::CPU, DeviceType::CUDA

std::array<BackendFactory, kDeviceTypes>& factories() {
    static std::array<BackendFactory, kDeviceTypes> table{};
    return table;
}

size_t slot(DeviceType type) {
    const auto i = static_cast<size_t>(type);
    GB_CHECK(i < kDeviceTypes, "kernels registry: unknown device type ", i);
    return i;
}

// What to do to get a backend for a device type this library lacks.
const char* how_to_build(DeviceType type) {
    return type == DeviceType::CUDA ? "the CUDA backend is not built in: configure with -DGB_CUDA=ON on a machine "
                                      "with the CUDA toolkit"
                                    : "no backend of that kind is built into this glassbox";
}

}  // namespace

void register_backend(DeviceType type, BackendFactory factory) {
    GB_CHECK(factory, "kernels registry: a null backend factory");
    BackendFactory& f = factories()[slot(type)];
    GB_CHECK(!f, "kernels registry: a second backend registered for device type ", static_cast<int>(type));
    f = factory;
}

Backend& backend_for(Device device) {
    // Thread-safe once (a function-local static); afterwards the table is only read.
    static const bool registered = (register_builtin_backends(), true);
    (void)registered;
    const BackendFactory f = factories()[slot(device.type())];
    GB_CHECK(f, "no backend for device ", device.str(), ": ", how_to_build(device.type()));
    return f(device.index());
}

}  // namespace gb::kernels
