// Device: where a tensor's storage lives. CPU always exists; CUDA(index) only
// in a CUDA build on a machine with that GPU. Device::cuda() checks both and
// raises gb::Error saying which is missing.
#pragma once

#include <string>

namespace gb {

enum class DeviceType { CPU, CUDA };

class Device {
public:
    constexpr Device() = default;
    static constexpr Device cpu() { return Device(); }
    // Raises gb::Error when this build has no CUDA backend or GPU `index` is absent.
    static Device cuda(int index = 0);
    // Parses "cpu", "cuda", "cuda:1"; raises gb::Error on anything else.
    static Device parse(const std::string& text);

    DeviceType type() const { return type_; }
    int index() const { return index_; }
    bool is_cpu() const { return type_ == DeviceType::CPU; }
    bool is_cuda() const { return type_ == DeviceType::CUDA; }
    std::string str() const;

    bool operator==(const Device& o) const { return type_ == o.type_ && index_ == o.index_; }
    bool operator!=(const Device& o) const { return !(*this == o); }

private:
    constexpr Device(DeviceType t, int i) : type_(t), index_(i) {}
    DeviceType type_ = DeviceType::CPU;
    int index_ = 0;
};

}  // namespace gb
