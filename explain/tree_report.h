// The report of a distillation run (train/distill.h): report.html with the scores (teacher, the soft tree's
// most probable leaf and its mixture of leaves, CART: test accuracy and fidelity), the training history (a
// table and the plot, also written as history.svg), the tree drawn as SVG (the top `levels` levels with each
// inner node's filter w_i as a signed image, bwr, and each leaf's class distribution as bars; below a cut, each subtree's mean leaf distribution), every filter and every
// leaf of the tree in compact grids, and one card per test image with its most probable path: the filters it
// passed, the branch taken and its probability, the leaf's distribution.
#pragma once

#include <cstdint>
#include <string>

#include "../train/distill.h"
#include "report.h"

namespace gb::explain {

struct TreeReportOptions {
    int64_t images = 8;  // test images with their path (the first of the split)
    int64_t levels = 4;  // levels of inner nodes drawn as a tree (the rest summarised per subtree)
};

// An inner node's filter w_i as an image (its [C, H, W] weights, symmetric about 0, bwr).
Image filter_image(const models::SoftTree& tree, int64_t node);
// The tree as an SVG drawing (see the header comment); class names label the bars' colours.
std::string tree_svg(const models::SoftTree& tree, const std::vector<std::string>& class_names, int64_t levels);

// Test accuracy and fidelity by epoch as an SVG line plot; gb::Error for a result without history.
std::string history_svg(const train::DistillResult& result);

Report tree_report(const train::DistillConfig& config, const train::DistillResult& result,
                   const TreeReportOptions& options);
// Writes dir/history.svg (when there is a history) and dir/report.html (atomically); returns the report's path.
std::string write_tree_report(const std::string& dir, const train::DistillConfig& config,
                              const train::DistillResult& result, const TreeReportOptions& options);

}  // namespace gb::explain
