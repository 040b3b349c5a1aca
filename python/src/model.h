// The Python module's model: a VGG, the metadata of the checkpoint it came from
// (input normalisation, for the bounds of the LRP presets) and the device it lives on;
// and the argument conversions that the explanation and metric bindings share.
#pragma once

#include <nanobind/nanobind.h>

#include <map>
#include <memory>
#include <optional>
#include <streambuf>
#include <string>
#include <vector>

#include "core/device.h"
#include "explain/composite.h"
#include "explain/target.h"
#include "models/vgg.h"

namespace gb::python {

// Discards what it is given: the log of a run (gb.train, gb.distill) without `verbose`.
struct NullBuffer : std::streambuf {
    int overflow(int c) override { return c; }
};

struct Model {
    std::shared_ptr<models::Vgg> net;
    std::map<std::string, std::string> metadata;
    Device device = Device::cpu();
};

// A `target` argument: None (the predicted class); an int or a target text ("3", "pred", "3-5"), the same
// for every sample; or a sequence with one of those per sample. Needs the GIL.
std::vector<explain::Target> targets_of(const nanobind::handle& target);

// The LRP presets' options for `model`: the input range [low, high] when given, else the checkpoint's
// normalisation of [0, 1] pixels when recorded (else none); the canonizer by name.
explain::PresetOptions preset_for(const Model& model, std::optional<float> low, std::optional<float> high,
                                  const std::string& canonizer);

}  // namespace gb::python
