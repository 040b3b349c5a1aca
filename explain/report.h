// A self-contained static HTML report of explanations: one file, no scripts,
// every image embedded as a base64 PNG data: URI. A header (title, caller's
// key/value info such as model and checkpoint, the date, colour legends),
// result sections (a table and figures each), one card per input (the input image, top classes with probabilities and the true
// class, notes on the input, pictures captioned with their names, and one row per method: its map and its overlay
// side by side under one caption, in a grid that wraps whole rows), and a footer describing
// the methods. Every caller-supplied text is HTML-escaped.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/tensor.h"
#include "heatmap.h"

namespace gb::explain {

// One method's row in a card: its map and its overlay side by side under one caption. `flag` says in words
// what a picture alone would hide (an all-zero map, NaN or infinity), shown in the caption; a picture that could
// not be drawn has width 0 and is left out (then `flag` says why).
struct ReportMapRow {
    std::string method;                // e.g. "gradcam": the pictures' alt text and the caption's first line
    std::vector<std::string> caption;  // further caption lines: what was computed, the target, the parameters
    std::string flag;                  // "" when there is nothing to warn about
    Image map, overlay;
};

struct ReportItem {
    std::string title;
    Tensor image;                // [C, H, W], C = 1 or 3, values in [0, 1]
    std::string image_caption = "input";
    std::string true_label;      // empty when unknown
    float true_probability = -1;  // < 0: unknown (then taken from top_classes when listed there)
    std::vector<std::pair<std::string, float>> top_classes;  // best first (the first is the prediction), in [0, 1]
    std::vector<std::pair<std::string, Image>> maps;         // method name -> rendered map (RGB8)
    std::vector<ReportMapRow> rows;                          // after `maps`: per method, map and overlay
    std::vector<std::string> notes;  // e.g. how an image file was converted for the model, shown in the card
};

// A section of results before the cards: a heading, a paragraph, a table (first row the
// header) and figures with captions, e.g. the metrics of `glassbox evaluate`.
struct ReportSection {
    std::string title, text;
    std::vector<std::vector<std::string>> table;
    std::vector<std::pair<std::string, Image>> figures;  // caption -> raster picture (an image, a map; plots: svg_figures)
    std::vector<std::pair<std::string, std::string>> svg_figures = {};  // caption -> SVG document (ours, inlined as is)
};

struct Report {
    std::string title;
    std::vector<std::pair<std::string, std::string>> info;  // e.g. {"Model", "vgg11"}, {"Checkpoint", path}
    std::string date;                                       // empty: the local time when rendered
    std::vector<ReportSection> sections;
    std::vector<ReportItem> items;
    std::vector<std::pair<std::string, std::string>> methods;  // name -> one-line description
    // Colormaps shown in the legend (as used to render the maps); empty hides that legend.
    std::string signed_colormap = "bwr";
    std::string sequential_colormap = "jet";
};

std::string html_escape(const std::string& text);
std::string base64_encode(const std::vector<uint8_t>& bytes);  // RFC 4648, with '=' padding

std::string render_html(const Report& report);
void save_html(const std::string& path, const Report& report);  // atomic

}  // namespace gb::explain
