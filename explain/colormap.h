// Colormaps: a value in [0, 1] -> an 8-bit RGB colour, each channel piecewise
// linear between control points (as matplotlib's LinearSegmentedColormap, but
// evaluated exactly rather than through a 256-entry table, so the centre of a
// diverging map is exactly its middle colour).
//   diverging (relevance, signed maps normalised with 0 at 0.5): "bwr", "seismic"
//   sequential (CAMs, saliency): "jet", "viridis", "gray"
// Inputs outside [0, 1] are clamped; NaN maps like 0.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace gb::explain {

struct Rgb8 {
    uint8_t r = 0, g = 0, b = 0;
    bool operator==(const Rgb8&) const = default;
};

class Colormap {
public:
    // (x, value) control points for one channel: x strictly increasing from 0 to 1, values in [0, 1].
    using Channel = std::vector<std::pair<float, float>>;

    Colormap(std::string name, bool diverging, Channel red, Channel green, Channel blue);
    // Colours evenly spaced over [0, 1] (matplotlib's LinearSegmentedColormap.from_list).
    static Colormap from_list(std::string name, bool diverging, const std::vector<std::array<float, 3>>& colors);

    const std::string& name() const { return name_; }
    // Meant for signed maps (white or neutral at 0.5).
    bool diverging() const { return diverging_; }
    Rgb8 operator()(float v) const;

private:
    std::string name_;
    bool diverging_;
    std::array<Channel, 3> channels_;
};

// The built-in maps by name; gb::Error listing the known names otherwise.
const Colormap& colormap(const std::string& name);
std::vector<std::string> colormap_names();

}  // namespace gb::explain
