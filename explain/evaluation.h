// Evaluation of explanation methods as a library call, what `glassbox evaluate` runs:
// run_evaluation(plan) measures every method of the plan on the plan's images with the
// metrics of explain/metrics.h and returns per-image values, curves and the randomisation
// table; the writers turn those results into the files of `glassbox evaluate`.
//
// The run, per batch of `options.batch` images: one Trace, the predicted classes, the target
// classes (options.target: the prediction, the label or one class; every method explains and
// every metric scores the target), and per method its maps from that trace, scored by each curve
// metric (AOPC per replacement, deletion, insertion) and by conservation (for the methods whose
// maps sum to something: LRP to the seed, IG and DeepLIFT to the logit's change from the zero
// baseline; for the others the metric is not applicable and says why). Max-sensitivity and
// randomisation explain perturbed inputs or re-initialised models, so they trace again; they
// run after every method has had its maps from the batch's trace, because randomisation
// writes (and then restores) the weights that trace saved. Means and standard errors are over
// images; the randomisation table is a mean over batches weighted by their size. Every random
// choice is seeded (options.seed), so a plan gives the same numbers on every run.
//
// Files (write_evaluation, in this order): results.csv, per_image.csv, results.md, curves.csv,
// <metric>_curves.svg per curve metric, randomisation.svg, report.html, and run.json last.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../core/distributed.h"
#include "../core/tensor.h"
#include "composite.h"
#include "heatmap.h"
#include "methods.h"
#include "metrics.h"
#include "report.h"
#include "../layers/layer.h"

namespace gb::explain {

// The metric names, in the order of the results table's columns:
// aopc, deletion, insertion, randomisation, sensitivity, conservation.
const std::vector<std::string>& evaluation_metric_names();

struct EvaluationOptions {
    std::vector<std::string> metrics{"aopc", "deletion", "insertion"};  // names above, as given (run.json)
    int64_t batch = 50;                              // images per traced batch
    int64_t patch = 4;                               // AOPC: side of the square patches
    int64_t aopc_steps = 16;                         // AOPC: patches removed, one per step
    std::vector<std::string> replacements{"noise"};  // AOPC: noise, mean, blur, black; one column each
    int64_t steps = 16;                              // deletion / insertion: curve points after the start
    float blur_sigma = 3.f;                          // the blurred input (insertion, AOPC blur), pixels
    int64_t sensitivity_samples = 10;                // max-sensitivity: perturbed inputs per image
    float radius = 0.02f;                            // max-sensitivity: L-infinity radius, input units
    uint64_t seed = 0;                               // tie orders, noise, random weights
    std::string target = "pred";                     // the class explained: "pred", "true" (the label) or an index
};

struct EvaluationPlan {
    std::shared_ptr<layers::Layer> model;  // explained as it is, on its own device; weights restored after randomisation
    Tensor inputs;                         // [N, C, H, W] as the model takes them (normalised)
    std::vector<int32_t> labels;           // [N] true classes (for the accuracy in the texts)
    std::vector<std::string> methods;      // method specs (explain/methods.h), each at most once
    // The input range (low: a black pixel, the deletion value; [low, high]: AOPC's noise) and the
    // LRP canonizer; PresetOptions::for_normalization(mean, std) gives it for a normalised input.
    PresetOptions preset;
    EvaluationOptions options;
    // Only named in the texts: the inputs are the first N images of `split` of dataset `data`.
    std::string data, split, checkpoint;
};

// A metric computed from perturbation curves: "aopc-<replacement>", "deletion" or "insertion".
struct CurveMetric {
    std::string key, header, title, y_label;  // column key, table header, plot title and y axis
    PerturbationOptions options;
    bool aopc = false;  // AOPC, else the area under the curve
};

struct Summary {
    double mean = 0, standard_error = 0;  // standard error of the mean (0 for one value)
    double ci95 = 0;                      // half-width of the mean's 95% confidence interval (Student's t; 0 for one value)
    int64_t count = 0;
};
Summary summarize(const std::vector<double>& values);
// The 0.975 quantile of Student's t distribution with `df` >= 1 degrees of freedom (tables to 4 decimals up
// to 30, then the Cornish-Fisher expansion around the normal quantile; within 1e-4 of the exact value).
double student_t_975(int64_t df);

struct MethodEvaluation {
    MethodSpec spec;
    std::map<std::string, std::vector<double>> values;  // column key -> per-image values, in image order
    std::map<std::string, Curves> curves;               // curve metric key -> every image's curve
    std::map<std::string, std::string> not_applicable;  // column key -> why the metric does not apply (no values)
    std::vector<RandomisationStep> randomisation;       // per step: means over images and the per-image values
    double seconds = 0;                                 // computing the maps from the shared trace
    Summary summary(const std::string& key) const;      // gb::Error for a key that was not measured
    bool applies(const std::string& key) const { return !not_applicable.count(key); }
};

struct EvaluationResults {
    std::vector<CurveMetric> curve_metrics;                  // in column order
    std::vector<std::pair<std::string, std::string>> columns;  // every column: key, header
    std::vector<MethodEvaluation> methods;                   // in the plan's order
    int64_t samples = 0, correct = 0;                        // images, and how many the model classified right
    std::vector<int32_t> labels, predicted, targets;         // per image: true, predicted and explained class
    double seconds = 0;                                      // the whole run
    std::string canonizer_note;                              // the trace's note for the plan's canonizer
    // From the plan, for the texts.
    EvaluationOptions options;
    std::string data, split, checkpoint, model, canonizer;  // model: its describe()
    bool measured(const std::string& metric) const;         // a name of evaluation_metric_names() asked for
    bool any_lrp() const;
    const MethodEvaluation& method(const std::string& text) const;  // by spec text; gb::Error if absent
};

struct EvaluationProgress {
    int64_t batch = 0, batches = 0;  // batches done (1-based) and in all
    int64_t images = 0, correct = 0;  // images done, and correctly classified among them
};

// The plan's method specs parsed; gb::Error for an unknown method or one given twice (results
// are keyed by the spec's text).
std::vector<MethodSpec> parse_evaluation_methods(const std::vector<std::string>& methods);

// Runs the plan; `progress` (may be empty) is called after each batch. With `comm` of P > 1 ranks (every rank
// calls it with the same plan), rank q runs batches q, q + P, ...; progress then comes after each round of P
// batches with the counts of every rank, and every rank returns the whole results: each batch's numbers are
// a function of the plan and the batch alone, and they are added up in batch order, so the results (and the
// files) are the one-process run's, bit for bit, except for the times.
EvaluationResults run_evaluation(const EvaluationPlan& plan,
                                 const std::function<void(const EvaluationProgress&)>& progress = {},
                                 const dist::Comm* comm = nullptr);

// ---- writers: the files of `glassbox evaluate` ----

// results.csv: method,metric,mean,stderr,ci95_low,ci95_high,samples,note, a row per method and column (a
// metric that does not apply: no numbers, samples 0, note "n/a: why"), then the randomisation steps
// (randomisation.{spearman_abs,spearman,ssim}.<layer>).
std::string results_csv(const EvaluationResults& results);
// per_image.csv: image,label,predicted,target,method,metric,value, a row per image, method and per-image
// metric (the columns of results.csv, randomisation steps included), images in order (0 = the first).
std::string per_image_csv(const EvaluationResults& results);
// curves.csv: method,metric,fraction,mean_score, the mean curve of each method and curve metric.
std::string curves_csv(const EvaluationResults& results);
// The paragraph that says what was measured and how (results.md and report.html).
std::string setup_text(const EvaluationResults& results);
// results.md: the setup, the table of means ± standard errors, the randomisation table.
std::string results_markdown(const EvaluationResults& results);

struct EvaluationPlot {
    std::string file, caption;  // "deletion_curves.svg", the report's caption
    bool randomisation = false; // the randomisation section's plot (x: the layers by name), else a curve plot
    std::string svg;            // the SVG document, written as `file` and inlined in report.html
};
// The mean curves of each curve metric, then the randomisation plot when measured, as SVG.
std::vector<EvaluationPlot> render_plots(const EvaluationResults& results);
Report evaluation_report(const EvaluationResults& results, const std::vector<EvaluationPlot>& plots);

// Each writes its file(s) into the folder `dir` (which must exist), atomically.
void write_results_csv(const EvaluationResults& results, const std::string& dir);  // and per_image.csv
void write_markdown(const EvaluationResults& results, const std::string& dir);
void write_curves_csv(const EvaluationResults& results, const std::string& dir);
void write_plots(const std::vector<EvaluationPlot>& plots, const std::string& dir);
void write_html_report(const EvaluationResults& results, const std::vector<EvaluationPlot>& plots, const std::string& dir);
void write_run_json(const EvaluationResults& results, const std::string& dir);  // what was run, for reproduction
// Every file above, in the order of this header's comment (run.json last).
void write_evaluation(const EvaluationResults& results, const std::string& dir);

}  // namespace gb::explain
