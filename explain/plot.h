// Line plots for the reports, drawn here as SVG (no plotting library): vector lines, real text, axes with
// "nice" ticks (1, 2, 5 x 10^k) or named categories, a title, axis labels and a legend outside the plot area.
// The document is standalone (written as .svg) and inlined as is in report.html. Text is laid out from an
// estimate of sans-serif glyph widths, so titles wrap, long category names turn, and the legend grows the
// picture rather than overlapping the curves. Also: stb_easy_font's segment font on raster images
// (draw_text), for captions inside pictures that are raster by nature.
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
    // When not empty, the x axis is categorical: every x value is an index 0..n-1 into these names (e.g. the
    // layers of a randomisation cascade), each index a tick labelled with its name. Otherwise x is numeric.
    std::vector<std::string> x_categories = {};
};

// The i-th series colour: matplotlib's tab10, then ten darker colours (cycling after 20).
Rgb8 series_color(size_t i);

// Axis ticks covering [lo, hi]: multiples of a step 1, 2 or 5 x 10^k, about `count` of them.
std::vector<double> nice_ticks(double lo, double hi, int count = 5);

// The plot as a standalone SVG document (xmlns, viewBox, width and height) of `width` x `height` pixels, taller
// when the legend or turned category names leave the plot area less than its rows or 100 px; a dot per point
// for series of at most 60 points; a numeric x of whole numbers only (epochs, steps) ticked at whole numbers.
// gb::Error when there is no series, a series is empty, its x and y differ in length, a value is not finite,
// a categorical x is not the index of a category, the size is below 200 x 150, or the legend and tick labels
// leave the plot area under 60 px wide.
std::string render_line_plot_svg(const LinePlot& plot, int64_t width = 960, int64_t height = 540);

// Text in stb_easy_font's font at `scale` pixels per font unit, top-left at (x, y); clipped to the image.
void draw_text(Image& image, double x, double y, const std::string& text, Rgb8 color, double scale = 2.0);
double text_width(const std::string& text, double scale = 2.0);

}  // namespace gb::explain
