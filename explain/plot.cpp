#include "explain/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/error.h"

// stb_easy_font is a header of static functions; this file uses only some of them.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

namespace gb::explain {

namespace {

constexpr Rgb8 kInk{31, 36, 48}, kGrid{229, 231, 235};

void put(Image& im, int64_t x, int64_t y, Rgb8 c) {
    if (x < 0 || y < 0 || x >= im.width || y >= im.height) return;
    uint8_t* p = im.pixels.data() + (y * im.width + x) * 3;
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
}

void fill_rect(Image& im, double x0, double y0, double x1, double y1, Rgb8 c) {
    for (int64_t y = static_cast<int64_t>(std::ceil(y0 - 0.5)); y < static_cast<int64_t>(std::ceil(y1 - 0.5)); ++y)
        for (int64_t x = static_cast<int64_t>(std::ceil(x0 - 0.5)); x < static_cast<int64_t>(std::ceil(x1 - 0.5)); ++x)
            put(im, x, y, c);
}

// A line `thick` pixels wide: a square stamp every half pixel along it.
void line(Image& im, double x0, double y0, double x1, double y1, Rgb8 c, double thick) {
    const double len = std::hypot(x1 - x0, y1 - y0);
    const int64_t n = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(len * 2)));
    for (int64_t i = 0; i <= n; ++i) {
        const double t = static_cast<double>(i) / static_cast<double>(n);
        const double x = x0 + t * (x1 - x0), y = y0 + t * (y1 - y0);
        fill_rect(im, x - thick / 2, y - thick / 2, x + thick / 2, y + thick / 2, c);
    }
}

std::string tick_label(double v, double step) {
    char buf[32];
    const int decimals = std::clamp(static_cast<int>(std::ceil(-std::log10(step) - 1e-9)), 0, 6);
    std::snprintf(buf, sizeof buf, "%.*f", decimals, std::fabs(v) < step * 1e-9 ? 0.0 : v);
    return buf;
}

}  // namespace

Rgb8 series_color(size_t i) {
    // tab10, then ten darker colours so that up to 20 series stay apart.
    static constexpr Rgb8 kColors[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},   {148, 103, 189},
                                       {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34},  {23, 190, 207},
                                       {0, 0, 0},      {0, 0, 128},     {128, 0, 0},     {0, 128, 128},   {128, 128, 0},
                                       {200, 0, 200},  {184, 134, 11},  {75, 0, 130},    {0, 100, 0},     {255, 0, 0}};
    return kColors[i % 20];
}

std::vector<double> nice_ticks(double lo, double hi, int count) {
    GB_CHECK(std::isfinite(lo) && std::isfinite(hi) && hi > lo && count >= 2, "nice_ticks: need finite lo < hi, got ",
             lo, " and ", hi);
    const double raw = (hi - lo) / count, mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = 10 * mag;
    for (double m : {1.0, 2.0, 5.0})
        if (raw <= m * mag) {
            step = m * mag;
            break;
        }
    std::vector<double> out;
    for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) out.push_back(t);
    return out;
}

double text_width(const std::string& text, double scale) {
    std::string copy = text;
    return stb_easy_font_width(copy.data()) * scale;
}

void draw_text(Image& im, double x, double y, const std::string& text, Rgb8 color, double scale) {
    std::string copy = text;
    std::vector<char> buffer(copy.size() * 1024 + 64);  // up to 16 quads of 64 bytes per character
    const int quads = stb_easy_font_print(0, 0, copy.data(), nullptr, buffer.data(), static_cast<int>(buffer.size()));
    for (int q = 0; q < quads; ++q) {
        const float* v = reinterpret_cast<const float*>(buffer.data() + q * 64);  // 4 vertices of x, y, z, rgba
        const float xa = std::min(v[0], v[8]), xb = std::max(v[0], v[8]), ya = std::min(v[1], v[9]), yb = std::max(v[1], v[9]);
        fill_rect(im, x + xa * scale, y + ya * scale, x + xb * scale, y + yb * scale, color);
    }
}

namespace {

// The data ranges of a plot (checked: series non-empty, x and y of one length, finite), widened where flat,
// y padded by 4%.
struct PlotRange {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
};

PlotRange plot_range(const LinePlot& plot, int64_t width, int64_t height) {
    GB_CHECK(width >= 200 && height >= 150, "plot: size ", width, "x", height, " is below 200x150");
    GB_CHECK(!plot.series.empty(), "plot '", plot.title, "': no series");
    PlotRange r;
    for (const auto& s : plot.series) {
        GB_CHECK(!s.x.empty() && s.x.size() == s.y.size(), "plot '", plot.title, "': series '", s.label, "' has ",
                 s.x.size(), " x and ", s.y.size(), " y values");
        for (size_t i = 0; i < s.x.size(); ++i) {
            GB_CHECK(std::isfinite(s.x[i]) && std::isfinite(s.y[i]), "plot '", plot.title, "': series '", s.label,
                     "' has a non-finite value at point ", i);
            r.xlo = std::min(r.xlo, s.x[i]), r.xhi = std::max(r.xhi, s.x[i]);
            r.ylo = std::min(r.ylo, s.y[i]), r.yhi = std::max(r.yhi, s.y[i]);
        }
    }
    if (r.xhi <= r.xlo) r.xlo -= 0.5, r.xhi += 0.5;
    if (r.yhi <= r.ylo) r.ylo -= 0.5, r.yhi += 0.5;
    const double pad = 0.04 * (r.yhi - r.ylo);
    r.ylo -= pad, r.yhi += pad;
    return r;
}

std::string svg_color(Rgb8 c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
    return buf;
}

std::string svg_escape(const std::string& text) {
    std::string out;
    for (const char c : text) {
        if (c == '&') out += "&amp;";
        else if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else if (c == '"') out += "&quot;";
        else out += c;
    }
    return out;
}

}  // namespace

std::string render_line_plot_svg(const LinePlot& plot, int64_t width, int64_t height) {
    const PlotRange r = plot_range(plot, width, height);
    double legend_w = 0;
    for (const auto& s : plot.series) legend_w = std::max(legend_w, 7.0 * static_cast<double>(s.label.size()));
    legend_w = std::min(legend_w + 40, 0.4 * static_cast<double>(width));
    const double left = 80, top = 56, right = static_cast<double>(width) - legend_w - 20,
                 bottom = static_cast<double>(height) - 60;
    auto px = [&](double v) { return left + (v - r.xlo) / (r.xhi - r.xlo) * (right - left); };
    auto py = [&](double v) { return bottom - (v - r.ylo) / (r.yhi - r.ylo) * (bottom - top); };
    std::ostringstream o;
    o.setf(std::ios::fixed);
    o.precision(2);
    o << "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " << width << " " << height << "\" width=\"" << width
      << "\" height=\"" << height << "\" font-family=\"sans-serif\" font-size=\"13\">\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n";
    const std::string ink = svg_color(kInk), grid = svg_color(kGrid);
    const auto xt = nice_ticks(r.xlo, r.xhi), yt = nice_ticks(r.ylo, r.yhi);
    const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1, ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
    for (double t : yt)
        o << "<line x1=\"" << left << "\" y1=\"" << py(t) << "\" x2=\"" << right << "\" y2=\"" << py(t) << "\" stroke=\"" << grid
          << "\"/><text x=\"" << left - 8 << "\" y=\"" << py(t) + 4 << "\" text-anchor=\"end\" fill=\"" << ink << "\">"
          << tick_label(t, ystep) << "</text>\n";
    for (double t : xt)
        o << "<line x1=\"" << px(t) << "\" y1=\"" << top << "\" x2=\"" << px(t) << "\" y2=\"" << bottom << "\" stroke=\"" << grid
          << "\"/><text x=\"" << px(t) << "\" y=\"" << bottom + 20 << "\" text-anchor=\"middle\" fill=\"" << ink << "\">"
          << tick_label(t, xstep) << "</text>\n";
    o << "<path d=\"M" << left << " " << top << "V" << bottom << "H" << right << "\" fill=\"none\" stroke=\"" << ink
      << "\" stroke-width=\"1.5\"/>\n";
    for (size_t i = 0; i < plot.series.size(); ++i) {
        const auto& s = plot.series[i];
        const std::string c = svg_color(series_color(i));
        o << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"2\" points=\"";
        for (size_t k = 0; k < s.x.size(); ++k) o << (k ? " " : "") << px(s.x[k]) << "," << py(s.y[k]);
        o << "\"/>\n";
        if (s.x.size() <= 60)
            for (size_t k = 0; k < s.x.size(); ++k)
                o << "<circle cx=\"" << px(s.x[k]) << "\" cy=\"" << py(s.y[k]) << "\" r=\"3\" fill=\"" << c << "\"/>";
        const double ly = top + 10 + 22 * static_cast<double>(i);
        o << "<line x1=\"" << right + 20 << "\" y1=\"" << ly << "\" x2=\"" << right + 44 << "\" y2=\"" << ly << "\" stroke=\"" << c
          << "\" stroke-width=\"3\"/><text x=\"" << right + 50 << "\" y=\"" << ly + 4 << "\" fill=\"" << ink << "\">"
          << svg_escape(s.label) << "</text>\n";
    }
    o << "<text x=\"" << static_cast<double>(width) / 2 << "\" y=\"28\" text-anchor=\"middle\" font-size=\"18\" fill=\"" << ink
      << "\">" << svg_escape(plot.title) << "</text>\n<text x=\"" << (left + right) / 2 << "\" y=\"" << bottom + 44
      << "\" text-anchor=\"middle\" fill=\"" << ink << "\">" << svg_escape(plot.x_label) << "</text>\n<text x=\"10\" y=\""
      << top - 16 << "\" fill=\"" << ink << "\">" << svg_escape(plot.y_label) << "</text>\n</svg>\n";
    return o.str();
}

Image render_line_plot(const LinePlot& plot, int64_t width, int64_t height) {
    const PlotRange range = plot_range(plot, width, height);
    const double xlo = range.xlo, xhi = range.xhi, ylo = range.ylo, yhi = range.yhi;

    Image im;
    im.width = width, im.height = height, im.channels = 3;
    im.pixels.assign(static_cast<size_t>(width * height * 3), 255);
    double legend_w = 0;
    for (const auto& s : plot.series) legend_w = std::max(legend_w, text_width(s.label));
    legend_w = std::min(legend_w + 40, 0.4 * static_cast<double>(width));
    const double left = 80, top = 56, right = static_cast<double>(width) - legend_w - 20,
                 bottom = static_cast<double>(height) - 60;
    auto px = [&](double v) { return left + (v - xlo) / (xhi - xlo) * (right - left); };
    auto py = [&](double v) { return bottom - (v - ylo) / (yhi - ylo) * (bottom - top); };

    const auto xt = nice_ticks(xlo, xhi), yt = nice_ticks(ylo, yhi);
    const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1, ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
    for (double t : yt) {
        line(im, left, py(t), right, py(t), kGrid, 1);
        const std::string l = tick_label(t, ystep);
        draw_text(im, left - 8 - text_width(l), py(t) - 7, l, kInk);
    }
    for (double t : xt) {
        line(im, px(t), top, px(t), bottom, kGrid, 1);
        const std::string l = tick_label(t, xstep);
        draw_text(im, px(t) - text_width(l) / 2, bottom + 8, l, kInk);
    }
    line(im, left, bottom, right, bottom, kInk, 1.5);
    line(im, left, top, left, bottom, kInk, 1.5);
    for (size_t i = 0; i < plot.series.size(); ++i) {
        const auto& s = plot.series[i];
        const Rgb8 c = series_color(i);
        for (size_t k = 1; k < s.x.size(); ++k) line(im, px(s.x[k - 1]), py(s.y[k - 1]), px(s.x[k]), py(s.y[k]), c, 2.5);
        for (size_t k = 0; k < s.x.size(); ++k) fill_rect(im, px(s.x[k]) - 3, py(s.y[k]) - 3, px(s.x[k]) + 3, py(s.y[k]) + 3, c);
        const double ly = top + 10 + 24 * static_cast<double>(i);
        line(im, right + 20, ly + 6, right + 44, ly + 6, c, 3);
        draw_text(im, right + 50, ly, s.label, kInk);
    }
    draw_text(im, (static_cast<double>(width) - text_width(plot.title, 2.5)) / 2, 6, plot.title, kInk, 2.5);
    draw_text(im, (left + right - text_width(plot.x_label)) / 2, bottom + 34, plot.x_label, kInk);
    draw_text(im, 10, top - 22, plot.y_label, kInk);
    return im;
}

}  // namespace gb::explain
