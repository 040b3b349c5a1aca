// Heatmaps for Python: maps to RGB arrays (symmetric normalisation for signed
// maps, so 0 is the colormap's centre; min-max for CAMs and saliency) and overlays.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>
#include <utility>
#include <vector>

#include "arrays.h"
#include "core/error.h"
#include "explain/heatmap.h"

namespace gb::python {

namespace {

using Rgb = nb::ndarray<nb::numpy, uint8_t>;

// Images stacked as [N, H, W, 3] (or [H, W, 3] for one), copied into an array the NumPy array owns.
Rgb stack(const std::vector<explain::Image>& images, bool batch) {
    const auto& first = images.front();
    auto* bytes = new std::vector<uint8_t>();
    for (const auto& im : images) bytes->insert(bytes->end(), im.pixels.begin(), im.pixels.end());
    nb::capsule owner(bytes, [](void* p) noexcept { delete static_cast<std::vector<uint8_t>*>(p); });
    std::vector<size_t> shape = {static_cast<size_t>(first.height), static_cast<size_t>(first.width), 3};
    if (batch) shape.insert(shape.begin(), images.size());
    return Rgb(bytes->data(), shape.size(), shape.data(), owner);
}

// [H, W], [C, H, W] or [N, C, H, W] -> per image, with whether it was a batch.
std::pair<std::vector<Tensor>, bool> planes(const Tensor& t, const char* what) {
    GB_CHECK(t.rank() >= 2 && t.rank() <= 4, what, ": expected [H, W], [C, H, W] or [N, C, H, W], got ",
             t.shape().str());
    if (t.rank() < 4) return {{t}, false};
    std::vector<Tensor> out;
    for (int64_t n = 0; n < t.dim(0); ++n) out.push_back(t.narrow(n, 1).view(Shape{t.dim(1), t.dim(2), t.dim(3)}));
    return {out, true};
}

Rgb heatmap(const InArray& map, const std::string& cmap, bool is_signed) {
    const auto [maps, batch] = planes(to_tensor(map), "heatmap");
    std::vector<explain::Image> images;
    {
        nb::gil_scoped_release release;
        for (const Tensor& m : maps) images.push_back(explain::render_heatmap(m, cmap, is_signed));
    }
    return stack(images, batch);
}

Rgb overlay(const InArray& image, const InArray& map, float alpha, const std::string& cmap, bool is_signed) {
    GB_CHECK(alpha >= 0.f && alpha <= 1.f, "overlay: alpha must be in [0, 1], got ", alpha);
    const auto [imgs, batch] = planes(to_tensor(image), "overlay image");
    const auto [maps, map_batch] = planes(to_tensor(map), "overlay map");
    GB_CHECK(imgs.size() == maps.size(), "overlay: ", imgs.size(), " images and ", maps.size(), " maps");
    std::vector<explain::Image> images;
    {
        nb::gil_scoped_release release;
        for (size_t i = 0; i < imgs.size(); ++i)
            images.push_back(explain::overlay(imgs[i], maps[i], cmap, is_signed, alpha));
    }
    return stack(images, batch);
}

}  // namespace

void bind_render(nb::module_& m) {
    m.def("heatmap", &heatmap, nb::arg("map"), nb::arg("cmap") = "bwr", nb::arg("signed") = true,
          "RGB uint8 [H, W, 3] (or [N, H, W, 3] for a batch) of a map [H, W], [C, H, W] (summed over C) or "
          "[N, C, H, W]: signed maps normalised symmetrically (0 -> the colormap's centre), else min-max.");
    m.def("overlay", &overlay, nb::arg("image"), nb::arg("map"), nb::arg("alpha") = 0.5f, nb::arg("cmap") = "bwr",
          nb::arg("signed") = true,
          "The heatmap of `map` blended over `image` ([C, H, W] or [N, C, H, W], values in [0, 1]) with an opacity "
          "that follows the map: (1 - a) * image + a * heatmap, a = alpha * |v| / max|v| for signed maps (0 leaves "
          "the image unchanged), alpha * the min-max normalised value for others; as RGB uint8.");
    m.def("colormap_names", &explain::colormap_names, "Colormaps `heatmap` and `overlay` accept.");
}

}  // namespace gb::python
