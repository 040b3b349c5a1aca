// `glassbox evaluate`: measure explanation methods on a dataset split with the
// metrics of explain/metrics (AOPC, deletion, insertion, randomisation,
// sensitivity, conservation). Each batch is traced once; every method's maps
// come from that trace. Writes results.csv, results.md, curves.csv, PNG plots
// and report.html to --out.
// In order: options checked and methods parsed (each at most once: results are keyed by the spec's text); --out
// made (removed again if the command fails); checkpoint, conventions and the first --samples images loaded and
// normalised; the curve metrics set up over the pixel range after normalisation. Then per batch of --batch images:
// one Trace, the predicted classes (every method explains the prediction), and per method its maps from that trace,
// scored by each metric. Max-sensitivity and randomisation explain perturbed inputs or re-initialised models, so
// they trace again (explainer_for). Means and standard errors are over images; the randomisation table is a mean
// over batches weighted by their size.
// Files, in this order: results.csv, results.md, curves.csv, <metric>_curves.png per curve metric,
// randomisation.png, report.html, and run.json last. results.md is also printed on stdout.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <numeric>
#include <sstream>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/explain_inputs.h"
#include "core/parallel.h"
#include "explain/methods.h"
#include "explain/metrics.h"
#include "explain/plot.h"
#include "explain/report.h"
#include "io/dataset.h"
#include "io/file_util.h"
#include "models/registry.h"
#include "train/progress.h"

#include <nlohmann/json.hpp>

namespace gb::cli {

namespace {

const std::vector<std::string> kMetrics = {"aopc", "deletion", "insertion", "randomisation", "sensitivity", "conservation"};

struct EvaluateOptions {
    std::string checkpoint, model, data = "fashion-mnist", data_dir, split = "test", out = "evaluation", device = "cpu";
    std::string canonizer = "batchnorm";
    std::vector<std::string> methods, metrics{"aopc", "deletion", "insertion"};
    int64_t samples = 100, batch = 50, patch = 4, aopc_steps = 16, steps = 16, sensitivity_samples = 10;
    std::vector<std::string> replacements{"noise"};
    float blur_sigma = 3.f, radius = 0.02f;
    uint64_t seed = 0;
    int threads = 0;
    InputOptions input;  // --normalize
};

struct Stat {
    std::vector<double> values;
    void add(const std::vector<double>& v) { values.insert(values.end(), v.begin(), v.end()); }
    double mean() const { return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size()); }
    double standard_error() const {
        if (values.size() < 2) return 0.0;
        const double m = mean();
        double s = 0;
        for (double v : values) s += (v - m) * (v - m);
        return std::sqrt(s / static_cast<double>(values.size() - 1) / static_cast<double>(values.size()));
    }
};

struct MethodResult {
    std::map<std::string, Stat> stats;          // metric -> per-sample values
    std::map<std::string, explain::Curves> curves;  // by curve metric key
    std::vector<explain::RandomisationStep> randomisation;  // weighted means over batches
    double seconds = 0;                         // computing the maps (from the shared trace)
};

std::string fixed(double v, int digits) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(digits) << v;
    return o.str();
}

// A metric computed from perturbation curves.
struct CurveMetric {
    std::string key, header, title, y_label;
    explain::PerturbationOptions options;
    bool aopc = false;  // AOPC, else the area under the curve
};

void write_text(const std::string& path, const std::string& text) {
    io::write_file_atomic(path, [&](std::ostream& out) { out << text; });
}

void run_evaluate(const EvaluateOptions& o) {
    GB_CHECK(!o.methods.empty(), "evaluate: give at least one --method (see glassbox explain --list)");
    GB_CHECK(!o.metrics.empty(), "evaluate: give at least one --metric (", "aopc, deletion, insertion, randomisation, sensitivity, conservation)");
    GB_CHECK(o.samples > 0 && o.batch > 0, "evaluate: --samples and --batch must be positive");
    std::vector<explain::MethodSpec> specs;
    for (const auto& m : o.methods) {
        GB_CHECK(std::count(o.methods.begin(), o.methods.end(), m) == 1, "evaluate: --method ", m, " is given twice");
        specs.push_back(explain::parse_method(m));
    }
    const Device device = Device::parse(o.device);
    OutputDir out_dir(o.out);
    auto wants = [&](const std::string& m) { return std::find(o.metrics.begin(), o.metrics.end(), m) != o.metrics.end(); };

    models::Checkpoint ck = models::load_checkpoint(o.checkpoint, o.model);
    const auto& cfg = ck.model->config();
    ExplainInputs in;
    read_checkpoint_conventions(ck, in, std::cerr, o.input);
    {
        const io::Dataset d = io::load_dataset(o.data, o.split == "train" ? io::Split::Train : io::Split::Test, o.data_dir);
        GB_CHECK(o.samples <= d.size(), "evaluate: --samples ", o.samples, " exceeds the ", d.size(), " ", o.split,
                 " images of ", o.data);
        std::vector<int64_t> indices(static_cast<size_t>(o.samples));
        std::iota(indices.begin(), indices.end(), 0);
        load_samples(o.data, o.data_dir, o.split, indices, cfg, in);
    }
    normalize_inputs(in);
    ck.model->to(device);
    explain::PresetOptions preset = preset_options(in);
    preset.canonizer = explain::parse_canonizer(o.canonizer);
    std::string canonizer_note;

    // Samek et al.: patches removed most relevant first, one per step, replaced by noise
    // over the pixel range (or the mean, a blur, black); Petsiuk et al.: pixels deleted
    // to black / inserted into a blurred input.
    std::vector<CurveMetric> curve_metrics;
    if (wants("aopc"))
        for (const auto& r : o.replacements) {
            CurveMetric m{"aopc-" + r, "AOPC, " + r + " (higher better)", "AOPC: most relevant patches replaced by " + r + " first",
                          "logit of the class", {}, true};
            m.options.patch = o.patch;
            m.options.steps = o.aopc_steps;
            m.options.units_per_step = 1;
            // "black" is a constant: the value of a black pixel after the model's normalisation (preset.low).
            m.options.replacement = r == "black" ? explain::Replacement::Value : explain::parse_replacement(r);
            m.options.value = *preset.low;
            m.options.noise_low = *preset.low;
            m.options.noise_high = *preset.high;
            m.options.blur_sigma = o.blur_sigma;
            m.options.seed = o.seed;
            curve_metrics.push_back(m);
        }
    explain::PerturbationOptions del_o;
    del_o.steps = o.steps;
    del_o.replacement = explain::Replacement::Value;
    del_o.value = *preset.low;
    del_o.probability = true;
    del_o.seed = o.seed;
    if (wants("deletion"))
        curve_metrics.push_back({"deletion", "deletion AUC (lower better)", "Deletion: most relevant pixels to black first",
                                 "probability of the class", del_o, false});
    explain::PerturbationOptions ins_o = del_o;
    ins_o.insertion = true;
    ins_o.replacement = explain::Replacement::Blur;
    ins_o.blur_sigma = o.blur_sigma;
    if (wants("insertion"))
        curve_metrics.push_back({"insertion", "insertion AUC (higher better)",
                                 "Insertion: most relevant pixels into the blurred input first", "probability of the class", ins_o, false});

    std::map<std::string, MethodResult> results;
    const explain::Target pred = explain::Target::predicted();
    auto explainer_for = [&](const explain::MethodSpec& spec) -> explain::Explainer {
        return [&spec, &preset](layers::Layer& model, const Tensor& x, const std::vector<int32_t>& classes) {
            explain::Trace t(model, x);
            std::vector<explain::Target> targets;
            for (int32_t c : classes) targets.push_back(explain::Target::of(c));
            return explain::attribute(t, spec, targets, preset).map;
        };
    };

    const int64_t N = o.samples, batches = (N + o.batch - 1) / o.batch;
    std::cerr << "evaluate: " << N << " " << o.data << " " << o.split << " images, " << specs.size() << " methods, metrics";
    for (const auto& m : o.metrics) std::cerr << " " << m;
    std::cerr << "\n";
    train::Progress progress("evaluate", batches, std::cerr, train::Progress::is_terminal(std::cerr));
    int64_t correct = 0;
    for (int64_t b = 0; b < batches; ++b) {
        const int64_t start = b * o.batch, B = std::min(o.batch, N - start);
        const Tensor x = in.normalized.narrow(start, B).to(device);
        explain::Trace trace(*ck.model, x);
        // The note depends on the model only: the first batch's serves for the report.
        if (b == 0) canonizer_note = trace.canonizer_note(preset.canonizer);
        const std::vector<int32_t> classes = explain::resolve_classes({pred}, trace.logits());
        for (int64_t n = 0; n < B; ++n) correct += classes[static_cast<size_t>(n)] == in.labels[static_cast<size_t>(start + n)];
        for (const auto& spec : specs) {
            MethodResult& r = results[spec.text];
            const auto t0 = std::chrono::steady_clock::now();
            const Tensor map = explain::attribute(trace, spec, {pred}, preset).map;
            r.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            // A NaN has no rank: the perturbation order, hence every curve, would be arbitrary.
            if (const int64_t bad = count_non_finite(map))
                GB_FAIL("evaluate: ", spec.text, " gave maps with ", bad, " NaN or infinite values on images ", start, "..",
                        start + B - 1, "; they cannot be scored");
            for (const auto& m : curve_metrics) {
                // The trace's logits score the unperturbed points of the curve without another forward.
                const explain::Curves c = explain::perturbation_curves(*ck.model, x, map, classes, m.options, trace.logits());
                r.curves[m.key].append(c);
                r.stats[m.key].add(m.aopc ? explain::aopc_per_sample(c) : explain::area_per_sample(c));
            }
            // The seed is one-hot, so relevance that is conserved sums to 1 per sample.
            if (wants("conservation")) r.stats["conservation"].add(explain::conservation_error(map, std::vector<double>(static_cast<size_t>(B), 1.0)));
            if (wants("sensitivity")) {
                explain::SensitivityOptions so;
                so.samples = o.sensitivity_samples;
                so.radius = o.radius;
                so.seed = o.seed;
                r.stats["sensitivity"].add(explain::max_sensitivity(*ck.model, x, classes, explainer_for(spec), so));
            }
            if (wants("randomisation")) {
                const auto steps = explain::randomisation_check(*ck.model, x, classes, explainer_for(spec), o.seed);
                // The first batch gives the list of steps (layers); zeroed, so that every batch, the first too,
                // adds its share weighted by its size.
                if (r.randomisation.empty()) {
                    r.randomisation = steps;
                    for (auto& s : r.randomisation) s.spearman = s.spearman_abs = s.ssim = 0;
                }
                const double w = static_cast<double>(B) / static_cast<double>(N);
                for (size_t i = 0; i < steps.size(); ++i) {
                    r.randomisation[i].spearman += w * steps[i].spearman;
                    r.randomisation[i].spearman_abs += w * steps[i].spearman_abs;
                    r.randomisation[i].ssim += w * steps[i].ssim;
                }
            }
        }
        progress.update(b + 1, start + B, {{"accuracy", fixed(100.0 * static_cast<double>(correct) / static_cast<double>(start + B), 1) + "%"}});
    }
    const double elapsed = progress.finish();

    // ---- tables ----
    std::vector<std::pair<std::string, std::string>> columns;  // key, header
    for (const auto& m : curve_metrics) columns.emplace_back(m.key, m.header);
    if (wants("sensitivity")) columns.emplace_back("sensitivity", "max-sensitivity (lower better)");
    if (wants("conservation")) columns.emplace_back("conservation", "conservation error");
    std::ostringstream csv, md, curves_csv;
    csv << "method,metric,mean,stderr,samples\n";
    curves_csv << "method,metric,fraction,mean_score\n";
    std::vector<std::vector<std::string>> table{{"method"}};
    md << "| method |";
    for (const auto& [key, header] : columns) {
        md << " " << header << " |";
        table[0].push_back(header);
    }
    md << " seconds / image (maps) |\n|---|";
    table[0].push_back("seconds / image (maps)");
    for (size_t i = 0; i <= columns.size(); ++i) md << "---:|";
    md << "\n";
    for (const auto& spec : specs) {
        const MethodResult& r = results[spec.text];
        std::vector<std::string> row{spec.text};
        md << "| " << spec.text << " |";
        for (const auto& [c, header] : columns) {
            const Stat& s = r.stats.at(c);
            csv << spec.text << "," << c << "," << fixed(s.mean(), 6) << "," << fixed(s.standard_error(), 6) << "," << s.values.size() << "\n";
            const std::string cell = fixed(s.mean(), 3) + " ± " + fixed(s.standard_error(), 3);
            md << " " << cell << " |";
            row.push_back(cell);
        }
        const std::string sec = fixed(r.seconds / static_cast<double>(N), 4);
        md << " " << sec << " |\n";
        row.push_back(sec);
        table.push_back(row);
        for (const auto& [metric, c] : r.curves) {
            const auto m = c.mean();
            for (size_t k = 0; k < m.size(); ++k)
                curves_csv << spec.text << "," << metric << "," << fixed(c.fraction[k], 6) << "," << fixed(m[k], 6) << "\n";
        }
    }
    std::vector<std::vector<std::string>> rtable;
    std::ostringstream rmd;
    if (wants("randomisation")) {
        // Every method goes through the same randomisation steps: the first method's steps name the columns.
        const auto& first = results[specs.front().text].randomisation;
        rtable.push_back({"method"});
        rmd << "| method |";
        for (const auto& s : first) {
            rtable[0].push_back("up to " + s.layer);
            rmd << " up to " << s.layer << " |";
        }
        rmd << "\n|---|";
        for (size_t i = 0; i < first.size(); ++i) rmd << "---:|";
        rmd << "\n";
        for (const auto& spec : specs) {
            std::vector<std::string> row{spec.text};
            rmd << "| " << spec.text << " |";
            for (const auto& s : results[spec.text].randomisation) {
                csv << spec.text << ",randomisation.spearman_abs." << s.layer << "," << fixed(s.spearman_abs, 6) << ",," << N << "\n";
                csv << spec.text << ",randomisation.spearman." << s.layer << "," << fixed(s.spearman, 6) << ",," << N << "\n";
                csv << spec.text << ",randomisation.ssim." << s.layer << "," << fixed(s.ssim, 6) << ",," << N << "\n";
                const std::string cell = fixed(s.spearman_abs, 3) + " / " + fixed(s.ssim, 3);
                row.push_back(cell);
                rmd << " " << cell << " |";
            }
            rtable.push_back(row);
            rmd << "\n";
        }
    }
    std::string replacements;
    for (const auto& r : o.replacements) replacements += (replacements.empty() ? "" : ", ") + r;
    std::ostringstream setup;
    setup << N << " " << o.data << " " << o.split << " images (the first " << N << "), explained for the predicted class; model accuracy on them "
          << fixed(100.0 * static_cast<double>(correct) / static_cast<double>(N), 2) << "%.";
    if (wants("aopc"))
        setup << " AOPC: " << o.patch << "x" << o.patch << " patches, most relevant first, one per step, " << o.aopc_steps
              << " steps, replaced by " << replacements << ", logit of the class.";
    if (wants("deletion") || wants("insertion"))
        setup << " Deletion: pixels to black; insertion: pixels into the input blurred with sigma " << fixed(o.blur_sigma, 1)
              << "; " << o.steps << " steps each, softmax probability of the class.";
    if (wants("sensitivity"))
        setup << " Max-sensitivity: " << o.sensitivity_samples << " samples, radius " << fixed(o.radius, 3) << " (input units).";
    const bool any_lrp = std::any_of(specs.begin(), specs.end(), [](const auto& s) { return s.name == "lrp"; });
    if (any_lrp) setup << " LRP " << canonizer_note << ".";
    setup << " Seed " << o.seed << ". Mean ± standard error over images; total " << train::Progress::format_duration(elapsed) << ".";
    std::ostringstream full_md;
    full_md << "# glassbox evaluate\n\n" << setup.str() << "\n\n" << md.str();
    if (wants("randomisation"))
        full_md << "\n## Model randomisation (cascading from the output): Spearman of |map| / SSIM against the original maps\n\n" << rmd.str();
    write_text(o.out + "/results.csv", csv.str());
    write_text(o.out + "/results.md", full_md.str());
    write_text(o.out + "/curves.csv", curves_csv.str());

    // ---- plots and the report ----
    explain::Report report;
    report.title = "glassbox evaluation";
    report.info = {{"Model", ck.model->describe()}, {"Checkpoint", o.checkpoint}, {"Data", o.data + " " + o.split}};
    if (any_lrp) report.info.emplace_back("LRP", canonizer_note);
    report.signed_colormap.clear();
    report.sequential_colormap.clear();
    explain::ReportSection main;
    main.title = "Faithfulness and robustness";
    main.text = setup.str();
    main.table = table;
    for (const auto& m : curve_metrics) {
        explain::LinePlot p;
        p.title = m.title;
        p.x_label = "fraction of the image perturbed";
        p.y_label = m.y_label;
        for (const auto& spec : specs) {
            const auto& c = results[spec.text].curves.at(m.key);
            p.series.push_back({spec.text, c.fraction, c.mean()});
        }
        const explain::Image im = explain::render_line_plot(p);
        explain::save_png(o.out + "/" + m.key + "_curves.png", im);
        main.figures.emplace_back(m.key + " (mean over images)", im);
    }
    report.sections.push_back(main);
    if (wants("randomisation")) {
        explain::ReportSection rs;
        rs.title = "Model randomisation (Adebayo et al. 2018)";
        rs.text = "Layers re-initialised cumulatively from the output; each cell: Spearman rank correlation of |map| / SSIM "
                  "against the maps of the trained model. Near 1 means the map does not depend on those weights.";
        rs.table = rtable;
        explain::LinePlot p;
        p.title = "Cascading randomisation";
        p.x_label = "layers randomised (from the output)";
        p.y_label = "Spearman of |map|";
        for (const auto& spec : specs) {
            explain::Series s{spec.text, {}, {}};
            const auto& steps = results[spec.text].randomisation;
            for (size_t i = 0; i < steps.size(); ++i) {
                s.x.push_back(static_cast<double>(i + 1));
                s.y.push_back(steps[i].spearman_abs);
            }
            p.series.push_back(s);
        }
        const explain::Image im = explain::render_line_plot(p);
        explain::save_png(o.out + "/randomisation.png", im);
        rs.figures.emplace_back("randomisation", im);
        report.sections.push_back(rs);
    }
    for (const auto& spec : specs) report.methods.emplace_back(spec.text, explain::method_caption(spec));
    explain::save_html(o.out + "/report.html", report);
    const nlohmann::json run = {{"command", "evaluate"},
                                {"glassbox_version", GB_VERSION},
                                {"checkpoint", o.checkpoint},
                                {"model", ck.model->describe()},
                                {"data", o.data + " " + o.split},
                                {"samples", N},
                                {"methods", o.methods},
                                {"metrics", o.metrics},
                                {"seed", o.seed},
                                {"canonizer", o.canonizer},
                                {"canonizer_note", any_lrp ? canonizer_note : ""}};
    write_text(o.out + "/run.json", run.dump(2) + "\n");
    out_dir.done();
    std::cout << full_md.str() << "\nwritten: " << o.out << "/results.csv, results.md, curves.csv, report.html, run.json\n";
}

}  // namespace

void add_evaluate_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("evaluate", "Measure explanation methods: AOPC, deletion/insertion AUC, randomisation, sensitivity");
    auto o = std::make_shared<EvaluateOptions>();
    cmd->add_option("--checkpoint", o->checkpoint, "A model.safetensors written by glassbox train")->required()->check(CLI::ExistingFile);
    cmd->add_option("--model", o->model, "Model for a state dict without glassbox metadata (default: inferred from its tensors, e.g. a torchvision VGG): " + models::model_names_text());
    cmd->add_option("--data", o->data, "Dataset")->capture_default_str();
    cmd->add_option("--data-dir", o->data_dir, "Where to look for the dataset");
    cmd->add_option("--split", o->split, "train or test")->capture_default_str()->check(CLI::IsMember({"train", "test"}));
    cmd->add_option("--samples", o->samples, "Evaluate the first N images of the split")->capture_default_str()->check(integer(1, kMaxCount));
    cmd->add_option("--method", o->methods, "Method spec, repeatable (glassbox explain --list), e.g. random for the baseline");
    cmd->add_option("--metric", o->metrics, "aopc, deletion, insertion, randomisation, sensitivity, conservation (repeatable)")
        ->capture_default_str()
        ->check(CLI::IsMember(kMetrics));
    cmd->add_option("--out", o->out, "Output folder")->capture_default_str();
    cmd->add_option("--batch", o->batch, "Images per traced batch")->capture_default_str()->check(integer(1, kMaxBatch));
    cmd->add_option("--patch", o->patch, "AOPC: side of the square patches")->capture_default_str()->check(integer(1, 4096));
    cmd->add_option("--aopc-steps", o->aopc_steps, "AOPC: patches removed (one per step)")->capture_default_str()->check(integer(1, 100000));
    cmd->add_option("--replacement", o->replacements, "AOPC: noise (uniform over the pixel range), mean, blur or black; repeatable")
        ->capture_default_str()
        ->check(CLI::IsMember({"noise", "mean", "blur", "black"}));
    cmd->add_option("--steps", o->steps, "Deletion/insertion: curve points after the start")->capture_default_str()->check(integer(1, 100000));
    cmd->add_option("--blur-sigma", o->blur_sigma, "Gaussian sigma (pixels) of the blurred input")->capture_default_str()->check(number(0, 1000, true));
    cmd->add_option("--sensitivity-samples", o->sensitivity_samples, "Max-sensitivity: perturbed inputs per image")
        ->capture_default_str()
        ->check(integer(1, 100000));
    cmd->add_option("--radius", o->radius, "Max-sensitivity: L-infinity radius in input units")->capture_default_str()->check(number(0, 1e6, true));
    cmd->add_option("--canonizer", o->canonizer,
                    "LRP canonizer: batchnorm (merge each BatchNorm2d into the Conv2d/Linear before it, as a view) or none")
        ->capture_default_str()
        ->check(CLI::IsMember({"batchnorm", "none"}));
    cmd->add_option("--seed", o->seed, "Seed of tie orders, noise and random weights")->capture_default_str();
    cmd->add_option("--normalize", o->input.normalize,
                    "MEAN/STD per channel, e.g. 0.485,0.456,0.406/0.229,0.224,0.225, or none "
                    "(default: the checkpoint's, else ImageNet's for 224x224 RGB models, else none)");
    cmd->add_option("--device", o->device, "cpu or cuda[:N]")->capture_default_str();
    cmd->add_option("--threads", o->threads, "CPU threads (0: all cores)")->check(integer(0, kMaxThreads));
    cmd->callback([o] {
        if (o->threads > 0) set_num_threads(o->threads);
        run_evaluate(*o);
    });
}

}  // namespace gb::cli
