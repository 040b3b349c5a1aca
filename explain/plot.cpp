#include "explain/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
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

// The pixels whose centres lie in [x0, x1) x [y0, y1), clipped to the image (draw_text's glyph quads).
void fill_rect(Image& im, double x0, double y0, double x1, double y1, Rgb8 c) {
    for (int64_t y = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(y0 - 0.5)));
         y < std::min(im.height, static_cast<int64_t>(std::ceil(y1 - 0.5))); ++y)
        for (int64_t x = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(x0 - 0.5)));
             x < std::min(im.width, static_cast<int64_t>(std::ceil(x1 - 0.5))); ++x) {
            uint8_t* p = im.pixels.data() + (y * im.width + x) * 3;
            p[0] = c.r, p[1] = c.g, p[2] = c.b;
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

// The data ranges of a plot (checked: series non-empty, x and y of one length, finite, categorical x an index),
// widened where flat, y padded by 4%; a categorical x spans half a slot either side of its first and last name.
struct PlotRange {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
};

PlotRange plot_range(const LinePlot& plot, int64_t width, int64_t height) {
    GB_CHECK(width >= 200 && height >= 150, "plot: size ", width, "x", height, " is below 200x150");
    GB_CHECK(!plot.series.empty(), "plot '", plot.title, "': no series");
    const auto n_cat = static_cast<double>(plot.x_categories.size());
    PlotRange r;
    for (const auto& s : plot.series) {
        GB_CHECK(!s.x.empty() && s.x.size() == s.y.size(), "plot '", plot.title, "': series '", s.label, "' has ",
                 s.x.size(), " x and ", s.y.size(), " y values");
        for (size_t i = 0; i < s.x.size(); ++i) {
            GB_CHECK(std::isfinite(s.x[i]) && std::isfinite(s.y[i]), "plot '", plot.title, "': series '", s.label,
                     "' has a non-finite value at point ", i);
            GB_CHECK(n_cat == 0 || (s.x[i] == std::floor(s.x[i]) && s.x[i] >= 0 && s.x[i] < n_cat), "plot '", plot.title,
                     "': series '", s.label, "' has x = ", s.x[i], " at point ", i, ", not the index of one of the ",
                     plot.x_categories.size(), " x categories");
            r.xlo = std::min(r.xlo, s.x[i]), r.xhi = std::max(r.xhi, s.x[i]);
            r.ylo = std::min(r.ylo, s.y[i]), r.yhi = std::max(r.yhi, s.y[i]);
        }
    }
    if (n_cat > 0) r.xlo = -0.5, r.xhi = n_cat - 0.5;
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

// The width of `text` in a sans-serif font of `size` px, estimated from classes of glyph widths (Helvetica's and
// DejaVu Sans's advance widths, rounded up) so that layouts that fit here also fit in the browser's font.
double svg_text_width(const std::string& text, double size) {
    double em = 0;
    for (const char c : text) {
        if (std::strchr(" il.,:;'|!()[]{}/\\", c) != nullptr) em += 0.34;
        else if (std::strchr("mwMW@%", c) != nullptr) em += 0.9;
        else if (c >= 'A' && c <= 'Z') em += 0.72;
        else em += 0.62;
    }
    return em * size;
}

// `text` cut into lines no wider than `max_width`: after a space, '-', '_', ':', '=' or ',' where possible, else
// anywhere. Every character is kept (the separators end their line), so the lines joined give the text back.
std::vector<std::string> wrap_text(const std::string& text, double size, double max_width) {
    std::vector<std::string> lines;
    std::string rest = text;
    while (svg_text_width(rest, size) > max_width && rest.size() > 1) {
        size_t fit = 1;
        while (fit < rest.size() && svg_text_width(rest.substr(0, fit + 1), size) <= max_width) ++fit;
        size_t cut = fit;
        for (size_t k = fit; k > fit / 2; --k)
            if (std::strchr(" -_:=,", rest[k - 1]) != nullptr) {
                cut = k;
                break;
            }
        lines.push_back(rest.substr(0, cut));
        rest = rest.substr(cut);
    }
    lines.push_back(rest);
    return lines;
}

// A <text> element of `lines`, one <tspan> per line `leading` px apart, the first line's baseline at y.
void svg_lines(std::ostringstream& o, double x, double y, const std::vector<std::string>& lines, double leading,
               const std::string& attributes) {
    o << "<text x=\"" << x << "\" y=\"" << y << "\"" << attributes << ">";
    for (size_t i = 0; i < lines.size(); ++i)
        o << "<tspan x=\"" << x << "\" dy=\"" << (i ? leading : 0.0) << "\">" << svg_escape(lines[i]) << "</tspan>";
    o << "</text>\n";
}

}  // namespace

std::string render_line_plot_svg(const LinePlot& plot, int64_t width, int64_t height) {
    const PlotRange r = plot_range(plot, width, height);
    const auto W = static_cast<double>(width);
    constexpr double kFont = 13, kLead = 16, kTitleFont = 17, kTick = 5;
    const std::string ink = svg_color(kInk), grid = svg_color(kGrid);
    const bool categorical = !plot.x_categories.empty();

    // Title: wrapped to the width; a word longer than the width shrinks the font instead.
    // (bold: widths estimated 10% above the regular weight's).
    double title_font = kTitleFont;
    const double title_room = (W - 40) / 1.1;
    std::vector<std::string> title_lines = wrap_text(plot.title, title_font, title_room);
    for (const auto& l : title_lines)
        title_font = std::min(title_font, kTitleFont * title_room / std::max(1.0, svg_text_width(l, kTitleFont)));
    title_font = std::max(title_font, 9.0);
    const double title_h = plot.title.empty() ? 0 : static_cast<double>(title_lines.size()) * title_font * 1.25;

    // Y ticks and the rotated y label on the left.
    const auto yt = nice_ticks(r.ylo, r.yhi);
    const double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
    double ytick_w = 0;
    for (double t : yt) ytick_w = std::max(ytick_w, svg_text_width(tick_label(t, ystep), kFont));
    // The y label turned along the axis, wrapped to about half the height (the plot area's usual share).
    const std::vector<std::string> ylabel_lines = wrap_text(plot.y_label, kFont, std::max(100.0, 0.5 * static_cast<double>(height)));
    const double left_base = 12 + (plot.y_label.empty() ? 0.0 : static_cast<double>(ylabel_lines.size()) * kLead) + 8 + ytick_w + 6 + kTick;

    // The legend, right of the plot area: a sample line, then the label wrapped to at most 30% of the width.
    const double label_max = std::max(80.0, 0.3 * W - 44);
    std::vector<std::vector<std::string>> legend;
    double legend_text_w = 0;
    size_t legend_rows = 0;
    for (const auto& s : plot.series) {
        legend.push_back(wrap_text(s.label, kFont, label_max));
        for (const auto& l : legend.back()) legend_text_w = std::max(legend_text_w, svg_text_width(l, kFont));
        legend_rows += legend.back().size();
    }
    const double right = W - (20 + 24 + 6 + legend_text_w + 10);
    const double legend_h = static_cast<double>(legend_rows) * kLead + static_cast<double>(plot.series.size()) * 6;

    // X ticks: numbers from nice_ticks, or every category's name, horizontal when the names fit their slots, else
    // turned by 45 degrees (90 where slots are narrower than a line), in a smaller font where even that overlaps.
    std::vector<double> xt;
    std::vector<std::string> xl;
    if (categorical) {
        for (size_t i = 0; i < plot.x_categories.size(); ++i) xt.push_back(static_cast<double>(i)), xl.push_back(plot.x_categories[i]);
    } else {
        xt = nice_ticks(r.xlo, r.xhi);
        // Counts (epochs, steps, k) get no ticks between whole numbers.
        bool whole = true;
        for (const auto& s : plot.series)
            for (double v : s.x) whole = whole && v == std::floor(v);
        if (whole && (xt.size() < 2 || xt[1] - xt[0] < 1)) {
            xt.clear();
            for (double t = std::ceil(r.xlo); t <= r.xhi; ++t) xt.push_back(t);
        }
        const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1;
        for (double t : xt) xl.push_back(tick_label(t, xstep));
    }
    double xtick_w = 0;
    for (const auto& l : xl) xtick_w = std::max(xtick_w, svg_text_width(l, kFont));
    double xfont = kFont, left = left_base;
    int angle = 0;
    double slot = (right - left) / (r.xhi - r.xlo);  // px per x unit = per category
    if (categorical && xtick_w + 8 > slot) {
        angle = slot * 0.7071 >= kLead ? 45 : 90;
        if (angle == 90 && slot < kLead) xfont = std::max(7.0, kFont * slot / kLead);
        xtick_w = xtick_w * xfont / kFont;
        if (angle == 45) {  // the first name runs left from its tick: keep it inside the picture
            left = std::max(left, svg_text_width(xl.front(), xfont) * 0.7071 + 6 - slot / 2);
            slot = (right - left) / (r.xhi - r.xlo);
        }
    }
    GB_CHECK(right - left >= 60, "plot '", plot.title, "': ", width, " px leave no room for the plot area beside the legend and tick labels");
    const double xtick_h = angle == 0 ? kLead : angle == 45 ? xtick_w * 0.7071 + xfont * 0.7071 : xtick_w;
    const double top = 12 + title_h + 12;  // room for the top tick's label
    const double bottom_margin = kTick + 6 + xtick_h + 8 + (plot.x_label.empty() ? 0 : kLead + 4) + 8;
    const double plot_h = std::max({static_cast<double>(height) - top - bottom_margin, 100.0, legend_h});
    const double bottom = top + plot_h, H = bottom + bottom_margin;

    auto px = [&](double v) { return left + (v - r.xlo) / (r.xhi - r.xlo) * (right - left); };
    auto py = [&](double v) { return bottom - (v - r.ylo) / (r.yhi - r.ylo) * (bottom - top); };
    std::ostringstream o;
    o.setf(std::ios::fixed);
    o.precision(2);
    o << "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " << width << " " << H << "\" width=\"" << width
      << "\" height=\"" << H << "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"" << kFont
      << "\">\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n";
    for (double t : yt)
        o << "<line x1=\"" << left << "\" y1=\"" << py(t) << "\" x2=\"" << right << "\" y2=\"" << py(t) << "\" stroke=\"" << grid
          << "\"/><line x1=\"" << left - kTick << "\" y1=\"" << py(t) << "\" x2=\"" << left << "\" y2=\"" << py(t)
          << "\" stroke=\"" << ink << "\"/><text x=\"" << left - kTick - 4 << "\" y=\"" << py(t) + 4.5
          << "\" text-anchor=\"end\" fill=\"" << ink << "\">" << tick_label(t, ystep) << "</text>\n";
    for (size_t i = 0; i < xt.size(); ++i) {
        const double x = px(xt[i]), y = bottom + kTick + 4;
        o << "<line x1=\"" << x << "\" y1=\"" << top << "\" x2=\"" << x << "\" y2=\"" << bottom << "\" stroke=\"" << grid
          << "\"/><line x1=\"" << x << "\" y1=\"" << bottom << "\" x2=\"" << x << "\" y2=\"" << bottom + kTick
          << "\" stroke=\"" << ink << "\"/>";
        if (angle == 0)
            o << "<text x=\"" << x << "\" y=\"" << y + 11 << "\" text-anchor=\"middle\" fill=\"" << ink << "\">";
        else  // the name ends at its tick, turned about that end
            o << "<text x=\"" << x + (angle == 90 ? xfont * 0.35 : 0) << "\" y=\"" << y + (angle == 90 ? 0 : xfont * 0.7)
              << "\" text-anchor=\"end\" font-size=\"" << xfont << "\" transform=\"rotate(-" << angle << " "
              << x + (angle == 90 ? xfont * 0.35 : 0) << " " << y + (angle == 90 ? 0 : xfont * 0.7) << ")\" fill=\"" << ink << "\">";
        o << svg_escape(xl[i]) << "</text>\n";
    }
    o << "<path d=\"M" << left << " " << top << "V" << bottom << "H" << right << "\" fill=\"none\" stroke=\"" << ink
      << "\" stroke-width=\"1.5\"/>\n";
    double ly = top + 4;
    for (size_t i = 0; i < plot.series.size(); ++i) {
        const auto& s = plot.series[i];
        const std::string c = svg_color(series_color(i));
        o << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"2\" points=\"";
        for (size_t k = 0; k < s.x.size(); ++k) o << (k ? " " : "") << px(s.x[k]) << "," << py(s.y[k]);
        o << "\"/>\n";
        if (s.x.size() <= 60)
            for (size_t k = 0; k < s.x.size(); ++k)
                o << "<circle cx=\"" << px(s.x[k]) << "\" cy=\"" << py(s.y[k]) << "\" r=\"3\" fill=\"" << c << "\"/>";
        o << "<line x1=\"" << right + 20 << "\" y1=\"" << ly + 8 << "\" x2=\"" << right + 44 << "\" y2=\"" << ly + 8
          << "\" stroke=\"" << c << "\" stroke-width=\"3\"/>";
        svg_lines(o, right + 50, ly + 12.5, legend[i], kLead, " fill=\"" + ink + "\"");
        ly += static_cast<double>(legend[i].size()) * kLead + 6;
    }
    if (!plot.title.empty()) {
        std::ostringstream attr;
        attr.setf(std::ios::fixed);
        attr.precision(2);
        attr << " text-anchor=\"middle\" font-size=\"" << title_font << "\" font-weight=\"bold\" fill=\"" << ink << "\"";
        svg_lines(o, W / 2, 10 + title_font, title_lines, title_font * 1.25, attr.str());
    }
    if (!plot.x_label.empty())
        o << "<text x=\"" << (left + right) / 2 << "\" y=\"" << H - 12 << "\" text-anchor=\"middle\" fill=\"" << ink << "\">"
          << svg_escape(plot.x_label) << "</text>\n";
    if (!plot.y_label.empty()) {
        double ylabel_w = 0;
        for (const auto& l : ylabel_lines) ylabel_w = std::max(ylabel_w, svg_text_width(l, kFont));
        std::ostringstream attr;
        attr.setf(std::ios::fixed);
        attr.precision(2);
        attr << " transform=\"translate(" << 12 + kFont << " " << (top + bottom) / 2 << ") rotate(-90)\" text-anchor=\"middle\""
             << " font-size=\"" << std::min(kFont, kFont * plot_h / ylabel_w) << "\" fill=\"" << ink << "\"";
        svg_lines(o, 0, 0, ylabel_lines, kLead, attr.str());
    }
    o << "</svg>\n";
    return o.str();
}

}  // namespace gb::explain
