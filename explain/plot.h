// Small raster plots for evaluation results, drawn here (no plotting library):
// line plots with axes, "nice" ticks (1, 2, 5 x 10^k), tick labels, a title,
// axis labels and a legend, text in stb_easy_font's segment font. The result is
// an RGB8 Image for save_png / the HTML report, or the same plot as an SVG
// document (vector lines and text, for curves of many points).
#pragma once

#include <string>
#include <vector>

#include "heatmap.h"

namespace gb::explain {

struct Series {
    std::string label;
    std::vector<double> x, y;  // same length >= 1; drawn as a polyline with a dot per point
};

struct LinePlot {
    std::string title, x_label, y_label;
    std::vector<Series> series;
};

// The i-th series colour: matplotlib's tab10, then ten darker colours (cycling after 20).
Rgb8 series_color(size_t i);

// Axis ticks covering [lo, hi]: multiples of a step 1, 2 or 5 x 10^k, about `count` of them.
std::vector<double> nice_ticks(double lo, double hi, int count = 5);

// Renders the plot; gb::Error when a series is empty, its x and y differ in length,
// a value is not finite, or the size is below 200 x 150.
Image render_line_plot(const LinePlot& plot, int64_t width = 960, int64_t height = 540);

// The same plot as a standalone SVG document (same layout, ticks, colours and checks; a dot per point only
// for series of at most 60 points).
std::string render_line_plot_svg(const LinePlot& plot, int64_t width = 960, int64_t height = 540);

// Text in stb_easy_font's font at `scale` pixels per font unit, top-left at (x, y); clipped to the image.
void draw_text(Image& image, double x, double y, const std::string& text, Rgb8 color, double scale = 2.0);
double text_width(const std::string& text, double scale = 2.0);

}  // namespace gb::explain
