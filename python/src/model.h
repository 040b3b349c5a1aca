// The Python module's model: a VGG, the metadata of the checkpoint it came from
// (input normalisation, for the bounds of the LRP presets) and the device it lives on.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/device.h"
#include "models/vgg.h"

namespace gb::python {

struct Model {
    std::shared_ptr<models::Vgg> net;
    std::map<std::string, std::string> metadata;
    Device device = Device::cpu();
};

}  // namespace gb::python
