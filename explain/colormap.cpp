#include "explain/colormap.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace gb::explain {

namespace {

void check_channel(const std::string& name, const Colormap::Channel& c) {
    GB_CHECK(c.size() >= 2 && c.front().first == 0.f && c.back().first == 1.f, "colormap '", name,
             "': control points must run from x = 0 to x = 1");
    for (size_t i = 0; i < c.size(); ++i) {
        GB_CHECK(c[i].second >= 0.f && c[i].second <= 1.f, "colormap '", name, "': value ", c[i].second,
                 " outside [0, 1]");
        GB_CHECK(i == 0 || c[i].first > c[i - 1].first, "colormap '", name, "': x must increase strictly");
    }
}

float eval(const Colormap::Channel& c, float x) {
    size_t i = 1;
    while (i + 1 < c.size() && x > c[i].first) ++i;
    const auto [x0, y0] = c[i - 1];
    const auto [x1, y1] = c[i];
    const float t = (x - x0) / (x1 - x0);
    return y0 + t * (y1 - y0);
}

uint8_t to_u8(float v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.f, 1.f) * 255.f)); }

// matplotlib's viridis (lib/matplotlib/_cm_listed.py, _viridis_data, CC0, by
// Nathaniel Smith and Stefan van der Walt): every 15th of its 256 entries
// (0, 15, ..., 255), i.e. 18 colours evenly spaced over [0, 1].
const std::vector<std::array<float, 3>> kViridis = {
    {0.267004f, 0.004874f, 0.329415f}, {0.281924f, 0.089666f, 0.412415f}, {0.280255f, 0.165693f, 0.476498f},
    {0.263663f, 0.237631f, 0.518762f}, {0.237441f, 0.305202f, 0.541921f}, {0.208623f, 0.367752f, 0.552675f},
    {0.182256f, 0.426184f, 0.557120f}, {0.159194f, 0.482237f, 0.558073f}, {0.137770f, 0.537492f, 0.554906f},
    {0.121148f, 0.592739f, 0.544641f}, {0.128087f, 0.647749f, 0.523491f}, {0.180653f, 0.701402f, 0.488189f},
    {0.274149f, 0.751988f, 0.436601f}, {0.395174f, 0.797475f, 0.367757f}, {0.535621f, 0.835785f, 0.281908f},
    {0.688944f, 0.865448f, 0.182725f}, {0.845561f, 0.887322f, 0.099702f}, {0.993248f, 0.906157f, 0.143936f},
};

std::vector<Colormap> make_builtin() {
    std::vector<Colormap> maps;
    // matplotlib lib/matplotlib/_cm.py: _bwr_data and _seismic_data, colour lists spread evenly.
    maps.push_back(Colormap::from_list("bwr", true, {{0.f, 0.f, 1.f}, {1.f, 1.f, 1.f}, {1.f, 0.f, 0.f}}));
    maps.push_back(Colormap::from_list(
        "seismic", true, {{0.f, 0.f, 0.3f}, {0.f, 0.f, 1.f}, {1.f, 1.f, 1.f}, {1.f, 0.f, 0.f}, {0.5f, 0.f, 0.f}}));
    // matplotlib lib/matplotlib/_cm.py: _jet_data (per-channel segments; dark blue -> dark red).
    maps.emplace_back("jet", false, Colormap::Channel{{0.f, 0.f}, {0.35f, 0.f}, {0.66f, 1.f}, {0.89f, 1.f}, {1.f, 0.5f}},
                      Colormap::Channel{{0.f, 0.f}, {0.125f, 0.f}, {0.375f, 1.f}, {0.64f, 1.f}, {0.91f, 0.f}, {1.f, 0.f}},
                      Colormap::Channel{{0.f, 0.5f}, {0.11f, 1.f}, {0.34f, 1.f}, {0.65f, 0.f}, {1.f, 0.f}});
    maps.push_back(Colormap::from_list("viridis", false, kViridis));
    maps.push_back(Colormap::from_list("gray", false, {{0.f, 0.f, 0.f}, {1.f, 1.f, 1.f}}));
    return maps;
}

const std::vector<Colormap>& builtin() {
    static const std::vector<Colormap> maps = make_builtin();
    return maps;
}

}  // namespace

Colormap::Colormap(std::string name, bool diverging, Channel red, Channel green, Channel blue)
    : name_(std::move(name)), diverging_(diverging), channels_{std::move(red), std::move(green), std::move(blue)} {
    for (const Channel& c : channels_) check_channel(name_, c);
}

Colormap Colormap::from_list(std::string name, bool diverging, const std::vector<std::array<float, 3>>& colors) {
    GB_CHECK(colors.size() >= 2, "colormap '", name, "' needs at least two colours");
    std::array<Channel, 3> ch;
    for (size_t i = 0; i < colors.size(); ++i) {
        const float x = i + 1 == colors.size() ? 1.f : static_cast<float>(i) / static_cast<float>(colors.size() - 1);
        for (size_t c = 0; c < 3; ++c) ch[c].emplace_back(x, colors[i][c]);
    }
    return Colormap(std::move(name), diverging, std::move(ch[0]), std::move(ch[1]), std::move(ch[2]));
}

Rgb8 Colormap::operator()(float v) const {
    const float x = std::isnan(v) ? 0.f : std::clamp(v, 0.f, 1.f);
    return Rgb8{to_u8(eval(channels_[0], x)), to_u8(eval(channels_[1], x)), to_u8(eval(channels_[2], x))};
}

const Colormap& colormap(const std::string& name) {
    for (const Colormap& m : builtin())
        if (m.name() == name) return m;
    std::string known;
    for (const std::string& n : colormap_names()) known += (known.empty() ? "" : ", ") + n;
    GB_FAIL("unknown colormap '", name, "' (known: ", known, ")");
}

std::vector<std::string> colormap_names() {
    std::vector<std::string> names;
    for (const Colormap& m : builtin()) names.push_back(m.name());
    return names;
}

}  // namespace gb::explain
