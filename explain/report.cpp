#include "explain/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "io/file_util.h"

namespace gb::explain {

namespace {

// Width of every picture on the page; smaller pictures are enlarged without smoothing.
constexpr int kFigurePx = 152;

constexpr const char* kStyle = R"(
:root { --ink: #1f2430; --muted: #6b7280; --line: #e5e7eb; --card: #ffffff; --bg: #f5f6f8; --accent: #2563eb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header, main, footer { max-width: 1160px; margin: 0 auto; padding: 16px 24px; }
header { display: flex; flex-wrap: wrap; gap: 16px 40px; align-items: flex-end; justify-content: space-between;
         border-bottom: 1px solid var(--line); }
h1 { font-size: 22px; margin: 0 0 8px; }
h2 { font-size: 16px; margin: 0; }
dl.info { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 0; }
dl.info dt { color: var(--muted); }
dl.info dd { margin: 0; font-family: ui-monospace, Menlo, Consolas, monospace; word-break: break-all; }
.legends { display: flex; gap: 28px; }
.legend { width: 220px; font-size: 12px; color: var(--muted); }
.legend .strip { height: 14px; border: 1px solid #c9ccd3; border-radius: 2px; }
.legend .ticks { display: flex; justify-content: space-between; }
.legend .name { color: var(--ink); margin-bottom: 3px; }
main { display: grid; gap: 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
.card-head { display: flex; align-items: baseline; gap: 12px; margin-bottom: 10px; }
.badge { font-size: 12px; padding: 1px 8px; border-radius: 10px; }
.badge.ok { background: #dcfce7; color: #166534; }
.badge.bad { background: #fee2e2; color: #991b1b; }
.notes { margin: 10px 0 0; padding-left: 16px; color: var(--muted); font-size: 12px; }
.card-body { display: grid; grid-template-columns: 230px 1fr; gap: 20px; align-items: start; }
@media (max-width: 720px) { .card-body { grid-template-columns: 1fr; } }
.side figure.input { width: auto; margin: 0 0 12px; }
.side figure.input figcaption { text-align: left; }
.card-main { display: grid; gap: 16px; }
.methods { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(340px, 100%), 1fr)); gap: 16px 20px; }
figure.method { width: auto; padding: 8px; border: 1px solid var(--line); border-radius: 6px; }
figure.method.flagged { border-color: #fca5a5; background: #fef2f2; }
figure.method .pair { display: flex; gap: 8px; }
figure.method > figcaption { text-align: left; color: var(--ink); line-height: 1.4; overflow-wrap: anywhere; }
figure.method .flag { color: #991b1b; font-weight: 600; }
.preds { font-size: 13px; padding-top: 2px; }
.preds .row { display: grid; grid-template-columns: 1fr 52px; gap: 0 8px; margin-bottom: 5px; }
.preds .cls { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.preds .cls.true { font-weight: 600; }
.preds .p { text-align: right; font-variant-numeric: tabular-nums; }
.preds .bar { grid-column: 1 / 3; height: 5px; background: var(--line); border-radius: 3px; }
.preds .bar span { display: block; height: 100%; background: var(--accent); border-radius: 3px; }
.preds .truth { margin-top: 8px; color: var(--muted); }
.figs { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; }
figure img { display: block; height: auto; border: 1px solid var(--line); background: #fff; }
figure img.px { image-rendering: pixelated; }
figure.input img { border-color: #9ca3af; }
figcaption { margin-top: 4px; font-size: 12px; text-align: center; color: var(--muted); }
table.results { border-collapse: collapse; margin: 10px 0; font-variant-numeric: tabular-nums; }
table.results th, table.results td { border-bottom: 1px solid var(--line); padding: 4px 12px; text-align: right; }
table.results th:first-child, table.results td:first-child { text-align: left; }
figure.plot, figure.plot img { width: auto; max-width: 100%; }
figure.plot > svg { display: block; max-width: 100%; height: auto; }
footer { color: var(--muted); border-top: 1px solid var(--line); margin-top: 8px; }
footer dl { display: grid; grid-template-columns: auto 1fr; gap: 4px 16px; margin: 8px 0 12px; }
footer dt { color: var(--ink); font-weight: 600; }
footer dd { margin: 0; }
)";

std::string now_string() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
    return buf;
}

std::string percent(float p) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f%%", static_cast<double>(p) * 100.0);
    return buf;
}

std::string data_uri(const Image& image) { return "data:image/png;base64," + base64_encode(encode_png(image)); }

// A CSS gradient sampling the colormap at 17 evenly spaced points.
std::string gradient(const Colormap& cmap) {
    std::ostringstream out;
    out << "linear-gradient(to right";
    for (int i = 0; i <= 16; ++i) {
        const Rgb8 c = cmap(static_cast<float>(i) / 16.f);
        out << ", rgb(" << int(c.r) << "," << int(c.g) << "," << int(c.b) << ") " << i * 100 / 16 << "%";
    }
    out << ")";
    return out.str();
}

void legend(std::ostringstream& out, const std::string& name, const char* what, const char* lo, const char* mid,
            const char* hi) {
    if (name.empty()) return;
    const Colormap& cmap = colormap(name);
    out << "<div class=\"legend\"><div class=\"name\">" << what << " (" << html_escape(name) << ")</div>"
        << "<div class=\"strip\" style=\"background: " << gradient(cmap) << "\"></div><div class=\"ticks\"><span>"
        << lo << "</span><span>" << mid << "</span><span>" << hi << "</span></div></div>\n";
}

// alt: the image's alternative text; empty: the caption.
void figure(std::ostringstream& out, const Image& image, const std::string& caption, const char* cls,
            const std::string& alt = "") {
    out << "<figure class=\"" << cls << "\"><img" << (image.width < kFigurePx ? " class=\"px\"" : "") << " src=\""
        << data_uri(image) << "\" alt=\"" << html_escape(alt.empty() ? caption : alt)
        << "\"><figcaption>" << html_escape(caption) << "</figcaption></figure>\n";
}

// A method's map and overlay side by side in one figure, so that the grid of .methods wraps whole rows.
void method_row(std::ostringstream& out, const ReportMapRow& row) {
    out << "<figure class=\"method" << (row.flag.empty() ? "" : " flagged") << "\"><div class=\"pair\">";
    if (row.map.width > 0) figure(out, row.map, "map", "map", row.method + " map");
    if (row.overlay.width > 0) figure(out, row.overlay, "overlay", "overlay", row.method + " overlay");
    out << "</div><figcaption><strong>" << html_escape(row.method) << "</strong>";
    // A line break between the lines (the newline keeps them apart in the page's text, e.g. when copied).
    for (const auto& line : row.caption) out << "\n<br>" << html_escape(line);
    if (!row.flag.empty()) out << "\n<br><span class=\"flag\">" << html_escape(row.flag) << "</span>";
    out << "</figcaption></figure>\n";
}

void card(std::ostringstream& out, const ReportItem& item, size_t index) {
    const std::string where = "report item " + std::to_string(index) + " ('" + item.title + "')";
    GB_CHECK(item.image.defined(), "render_html: ", where, " has no input image");
    float true_p = item.true_probability;
    for (const auto& [name, p] : item.top_classes) {
        GB_CHECK(std::isfinite(p) && p >= 0.f && p <= 1.f, "render_html: ", where, ": probability ", p, " of class '",
                 name, "' is outside [0, 1]");
        if (true_p < 0.f && !item.true_label.empty() && name == item.true_label) true_p = p;
    }
    out << "<section class=\"card\"><div class=\"card-head\"><h2>" << html_escape(item.title) << "</h2>";
    if (!item.top_classes.empty() && !item.true_label.empty()) {
        const bool ok = item.top_classes.front().first == item.true_label;
        out << "<span class=\"badge " << (ok ? "ok\">correct" : "bad\">wrong") << "</span>";
    }
    out << "</div>\n<div class=\"card-body\">\n<div class=\"side\">\n";
    figure(out, to_rgb8(item.image), item.image_caption, "input");
    out << "<div class=\"preds\">";
    for (size_t k = 0; k < item.top_classes.size(); ++k) {
        const auto& [name, p] = item.top_classes[k];
        const bool is_true = !item.true_label.empty() && name == item.true_label;
        out << "<div class=\"row\"><span class=\"cls" << (is_true ? " true" : "") << "\" title=\"" << html_escape(name)
            << "\">" << (k == 0 ? "predicted: " : "") << html_escape(name) << "</span><span class=\"p\">"
            << percent(p) << "</span><div class=\"bar\"><span style=\"width: " << percent(p)
            << "\"></span></div></div>";
    }
    if (!item.true_label.empty()) {
        out << "<div class=\"truth\">true: <strong>" << html_escape(item.true_label) << "</strong>";
        if (true_p >= 0.f) out << " (" << percent(true_p) << ")";
        out << "</div>";
    }
    if (!item.notes.empty()) {
        out << "<ul class=\"notes\">";
        for (const auto& n : item.notes) out << "<li>" << html_escape(n) << "</li>";
        out << "</ul>";
    }
    out << "</div></div>\n<div class=\"card-main\">\n";
    if (!item.maps.empty()) {
        out << "<div class=\"figs\">\n";
        for (const auto& [method, image] : item.maps) figure(out, image, method, "map");
        out << "</div>\n";
    }
    if (!item.rows.empty()) {
        out << "<div class=\"methods\">\n";
        for (const auto& row : item.rows) method_row(out, row);
        out << "</div>\n";
    }
    out << "</div></div></section>\n";
}

void section(std::ostringstream& out, const ReportSection& s) {
    out << "<section class=\"card\"><h2>" << html_escape(s.title) << "</h2>\n";
    if (!s.text.empty()) out << "<p>" << html_escape(s.text) << "</p>\n";
    if (!s.table.empty()) {
        out << "<table class=\"results\">";
        for (size_t r = 0; r < s.table.size(); ++r) {
            out << "<tr>";
            for (const auto& cell : s.table[r]) out << (r == 0 ? "<th>" : "<td>") << html_escape(cell) << (r == 0 ? "</th>" : "</td>");
            out << "</tr>";
        }
        out << "</table>\n";
    }
    if (!s.figures.empty() || !s.svg_figures.empty()) {
        out << "<div class=\"figs\">\n";
        for (const auto& [caption, image] : s.figures)
            out << "<figure class=\"plot\"><img src=\"" << data_uri(image) << "\" alt=\"" << html_escape(caption)
                << "\"><figcaption>" << html_escape(caption) << "</figcaption></figure>\n";
        for (const auto& [caption, svg] : s.svg_figures)
            out << "<figure class=\"plot\">" << svg << "<figcaption>" << html_escape(caption) << "</figcaption></figure>\n";
        out << "</div>\n";
    }
    out << "</section>\n";
}

}  // namespace

std::string html_escape(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string base64_encode(const std::vector<uint8_t>& bytes) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    for (size_t i = 0; i < bytes.size(); i += 3) {
        const size_t n = std::min<size_t>(3, bytes.size() - i);
        uint32_t v = uint32_t(bytes[i]) << 16;
        if (n > 1) v |= uint32_t(bytes[i + 1]) << 8;
        if (n > 2) v |= bytes[i + 2];
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += n > 1 ? kAlphabet[(v >> 6) & 63] : '=';
        out += n > 2 ? kAlphabet[v & 63] : '=';
    }
    return out;
}

std::string render_html(const Report& report) {
    std::ostringstream out;
    out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" << html_escape(report.title)
        << "</title>\n<style>" << kStyle << "figure, figure img { width: " << kFigurePx << "px; }\n</style>\n</head>\n<body>\n<header>\n<div><h1>"
        << html_escape(report.title) << "</h1>\n<dl class=\"info\">";
    for (const auto& [key, value] : report.info)
        out << "<dt>" << html_escape(key) << "</dt><dd>" << html_escape(value) << "</dd>";
    out << "<dt>Date</dt><dd>" << html_escape(report.date.empty() ? now_string() : report.date)
        << "</dd></dl>\n</div>\n<div class=\"legends\">\n";
    legend(out, report.signed_colormap, "relevance", "negative", "0", "positive");
    legend(out, report.sequential_colormap, "activation maps", "low", "", "high");
    out << "</div>\n</header>\n<main>\n";
    for (const auto& s : report.sections) section(out, s);
    for (size_t i = 0; i < report.items.size(); ++i) card(out, report.items[i], i);
    out << "</main>\n<footer>\n";
    if (!report.methods.empty()) {
        out << "<h2>Methods</h2>\n<dl>";
        for (const auto& [name, text] : report.methods)
            out << "<dt>" << html_escape(name) << "</dt><dd>" << html_escape(text) << "</dd>";
        out << "</dl>\n";
    }
    out << "<p>Generated by glassbox " << GB_VERSION << ".</p>\n</footer>\n</body>\n</html>\n";
    return out.str();
}

void save_html(const std::string& path, const Report& report) {
    const std::string html = render_html(report);
    io::write_file_atomic(path, [&](std::ostream& out) { out.write(html.data(), static_cast<std::streamsize>(html.size())); });
}

}  // namespace gb::explain
