// The files of `glassbox evaluate` from EvaluationResults (explain/evaluation.h): the CSV and
// Markdown texts, the plots, the HTML report and run.json. Numbers are printed with a fixed
// number of decimals (6 in the CSVs, 3 in the tables), so equal results give equal files.
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "explain/evaluation.h"
#include "explain/plot.h"
#include "io/file_util.h"
#include "train/progress.h"

namespace gb::explain {

namespace {

std::string fixed(double v, int digits) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(digits) << v;
    return o.str();
}

using Table = std::vector<std::vector<std::string>>;  // the first row is the header

// | a | b |, a rule with the first column left-aligned and the others right-aligned, the rows.
std::string markdown_table(const Table& t) {
    std::ostringstream md;
    for (size_t i = 0; i < t.size(); ++i) {
        md << "|";
        for (const auto& cell : t[i]) md << " " << cell << " |";
        md << "\n";
        if (i == 0) {
            md << "|---|";
            for (size_t c = 1; c < t[0].size(); ++c) md << "---:|";
            md << "\n";
        }
    }
    return md.str();
}

// Means and their 95% confidence intervals per method and column ("n/a" where a metric does not apply),
// and the seconds per image of the maps.
Table results_table(const EvaluationResults& r) {
    Table t{{"method"}};
    for (const auto& [key, header] : r.columns) t[0].push_back(header);
    t[0].push_back("seconds / image (maps)");
    for (const auto& m : r.methods) {
        std::vector<std::string> row{m.spec.text};
        for (const auto& [key, header] : r.columns) {
            if (!m.applies(key)) {
                row.push_back("n/a");
                continue;
            }
            const Summary s = m.summary(key);
            row.push_back(fixed(s.mean, 3) + " [" + fixed(s.mean - s.ci95, 3) + ", " + fixed(s.mean + s.ci95, 3) + "]");
        }
        row.push_back(fixed(m.seconds / static_cast<double>(r.samples), 4));
        t.push_back(row);
    }
    return t;
}

// Spearman of |map| / SSIM per method and randomisation step. Every method goes through the
// same steps: the first method's name the columns.
Table randomisation_table(const EvaluationResults& r) {
    Table t{{"method"}};
    for (const auto& s : r.methods.front().randomisation) t[0].push_back("up to " + s.layer);
    for (const auto& m : r.methods) {
        std::vector<std::string> row{m.spec.text};
        for (const auto& s : m.randomisation) row.push_back(fixed(s.spearman_abs, 3) + " / " + fixed(s.ssim, 3));
        t.push_back(row);
    }
    return t;
}

// "conservation does not apply to gradcam: a CAM is ..." per method and metric that does not apply.
std::vector<std::string> not_applicable_notes(const EvaluationResults& r) {
    std::vector<std::string> out;
    for (const auto& m : r.methods)
        for (const auto& [key, why] : m.not_applicable) out.push_back(key + " does not apply to " + m.spec.text + ": " + why + ".");
    return out;
}

void write_text(const std::string& path, const std::string& text) {
    io::write_file_atomic(path, [&](std::ostream& out) { out << text; });
}

}  // namespace

std::string results_csv(const EvaluationResults& r) {
    std::ostringstream csv;
    csv << "method,metric,mean,stderr,ci95_low,ci95_high,samples,note\n";
    for (const auto& m : r.methods)
        for (const auto& [key, header] : r.columns) {
            csv << io::csv_field(m.spec.text) << "," << key << ",";
            if (!m.applies(key)) {
                csv << ",,,,0," << io::csv_field("n/a: " + m.not_applicable.at(key)) << "\n";
                continue;
            }
            const Summary s = m.summary(key);
            csv << fixed(s.mean, 6) << "," << fixed(s.standard_error, 6) << "," << fixed(s.mean - s.ci95, 6) << ","
                << fixed(s.mean + s.ci95, 6) << "," << s.count << ",\n";
        }
    if (r.measured("randomisation"))
        for (const auto& m : r.methods)
            for (const auto& s : m.randomisation) {
                const std::pair<const char*, const std::vector<double>*> stats[] = {
                    {"spearman_abs", &s.spearman_abs_per_sample}, {"spearman", &s.spearman_per_sample}, {"ssim", &s.ssim_per_sample}};
                for (const auto& [name, values] : stats) {
                    const Summary sum = summarize(*values);
                    csv << io::csv_field(m.spec.text) << ",randomisation." << name << "." << s.layer << "," << fixed(sum.mean, 6)
                        << "," << fixed(sum.standard_error, 6) << "," << fixed(sum.mean - sum.ci95, 6) << ","
                        << fixed(sum.mean + sum.ci95, 6) << "," << sum.count << ",\n";
                }
            }
    return csv.str();
}

std::string per_image_csv(const EvaluationResults& r) {
    std::ostringstream csv;
    csv << "image,label,predicted,target,method,metric,value\n";
    for (int64_t n = 0; n < r.samples; ++n) {
        const auto i = static_cast<size_t>(n);
        const std::string image = std::to_string(n) + "," + std::to_string(r.labels[i]) + "," +
                                  std::to_string(r.predicted[i]) + "," + std::to_string(r.targets[i]) + ",";
        for (const auto& m : r.methods) {
            const std::string method = io::csv_field(m.spec.text) + ",";
            for (const auto& [key, header] : r.columns)
                if (m.applies(key)) csv << image << method << key << "," << fixed(m.values.at(key)[i], 6) << "\n";
            for (const auto& s : m.randomisation) {
                csv << image << method << "randomisation.spearman_abs." << s.layer << "," << fixed(s.spearman_abs_per_sample[i], 6) << "\n";
                csv << image << method << "randomisation.spearman." << s.layer << "," << fixed(s.spearman_per_sample[i], 6) << "\n";
                csv << image << method << "randomisation.ssim." << s.layer << "," << fixed(s.ssim_per_sample[i], 6) << "\n";
            }
        }
    }
    return csv.str();
}

std::string curves_csv(const EvaluationResults& r) {
    std::ostringstream csv;
    csv << "method,metric,fraction,mean_score\n";
    for (const auto& m : r.methods)
        for (const auto& [metric, c] : m.curves) {
            const auto mean = c.mean();
            for (size_t k = 0; k < mean.size(); ++k)
                csv << io::csv_field(m.spec.text) << "," << metric << "," << fixed(c.fraction[k], 6) << "," << fixed(mean[k], 6) << "\n";
        }
    return csv.str();
}

std::string setup_text(const EvaluationResults& r) {
    const EvaluationOptions& o = r.options;
    const int64_t N = r.samples;
    std::string replacements;
    for (const auto& s : o.replacements) replacements += (replacements.empty() ? "" : ", ") + s;
    std::ostringstream setup;
    const std::string& t = o.target;
    const std::string explained = t == "pred" ? "the predicted class" : t == "true" ? "the true class" : "class " + t;
    setup << N << " " << r.data << " " << r.split << " images (the first " << N << "), explained for " << explained
          << " (every metric scores it); model accuracy on them "
          << fixed(100.0 * static_cast<double>(r.correct) / static_cast<double>(N), 2) << "%.";
    if (r.measured("aopc"))
        setup << " AOPC: " << o.patch << "x" << o.patch << " patches, most relevant first, one per step, " << o.aopc_steps
              << " steps, replaced by " << replacements << ", logit of the class.";
    if (r.measured("deletion") || r.measured("insertion"))
        setup << " Deletion: pixels to black; insertion: pixels into the input blurred with sigma " << fixed(o.blur_sigma, 1)
              << "; " << o.steps << " steps each, softmax probability of the class.";
    if (r.measured("sensitivity"))
        setup << " Max-sensitivity: " << o.sensitivity_samples << " samples, radius " << fixed(o.radius, 3) << " (input units).";
    if (r.any_lrp()) setup << " LRP " << r.canonizer_note << ".";
    setup << " Seed " << o.seed << ". Means over images with their 95% confidence intervals [low, high] (Student's t); "
          << "per-image values in per_image.csv; total " << train::Progress::format_duration(r.seconds) << ".";
    for (const auto& note : not_applicable_notes(r)) setup << " " << note;
    return setup.str();
}

std::string results_markdown(const EvaluationResults& r) {
    std::ostringstream md;
    md << "# glassbox evaluate\n\n" << setup_text(r) << "\n\n" << markdown_table(results_table(r));
    if (r.measured("randomisation"))
        md << "\n## Model randomisation (cascading from the output): Spearman of |map| / SSIM against the original maps\n\n"
           << markdown_table(randomisation_table(r));
    return md.str();
}

std::vector<EvaluationPlot> render_plots(const EvaluationResults& r) {
    std::vector<EvaluationPlot> plots;
    for (const auto& cm : r.curve_metrics) {
        LinePlot p;
        p.title = cm.title;
        p.x_label = "fraction of the image perturbed";
        p.y_label = cm.y_label;
        for (const auto& m : r.methods) {
            const Curves& c = m.curves.at(cm.key);
            p.series.push_back({m.spec.text, c.fraction, c.mean()});
        }
        plots.push_back({cm.key + "_curves.svg", cm.key + ", mean over images (" + cm.key + "_curves.svg)", false,
                         render_line_plot_svg(p)});
    }
    if (r.measured("randomisation")) {
        LinePlot p;
        p.title = "Cascading randomisation";
        p.x_label = "layers re-initialised, from the output down to the one named";
        p.y_label = "Spearman of |map|";
        // Every method's cascade runs over the same layers of the one model, in the same order.
        for (const auto& step : r.methods.front().randomisation) p.x_categories.push_back(step.layer);
        for (const auto& m : r.methods) {
            Series s{m.spec.text, {}, {}};
            for (size_t i = 0; i < m.randomisation.size(); ++i) {
                GB_CHECK(i < p.x_categories.size() && m.randomisation[i].layer == p.x_categories[i],
                         "evaluate: the randomisation of ", m.spec.text, " does not follow the cascade of ",
                         r.methods.front().spec.text);
                s.x.push_back(static_cast<double>(i));
                s.y.push_back(m.randomisation[i].spearman_abs);
            }
            p.series.push_back(s);
        }
        plots.push_back({"randomisation.svg", "Spearman of |map| by layer, mean over images (randomisation.svg)", true,
                         render_line_plot_svg(p)});
    }
    return plots;
}

Report evaluation_report(const EvaluationResults& r, const std::vector<EvaluationPlot>& plots) {
    Report report;
    report.title = "glassbox evaluation";
    report.info = {{"Model", r.model}, {"Checkpoint", r.checkpoint}, {"Data", r.data + " " + r.split}};
    if (r.any_lrp()) report.info.emplace_back("LRP", r.canonizer_note);
    report.signed_colormap.clear();
    report.sequential_colormap.clear();
    ReportSection main{"Faithfulness and robustness", setup_text(r), results_table(r), {}};
    ReportSection rs{"Model randomisation (Adebayo et al. 2018)",
                     "Layers re-initialised cumulatively from the output; each cell: Spearman rank correlation of |map| / SSIM "
                     "against the maps of the trained model. Near 1 means the map does not depend on those weights.",
                     {}, {}};
    for (const auto& p : plots) (p.randomisation ? rs : main).svg_figures.emplace_back(p.caption, p.svg);
    report.sections.push_back(main);
    if (r.measured("randomisation")) {
        rs.table = randomisation_table(r);
        report.sections.push_back(rs);
    }
    for (const auto& m : r.methods) report.methods.emplace_back(m.spec.text, method_caption(m.spec));
    return report;
}

void write_results_csv(const EvaluationResults& r, const std::string& dir) {
    write_text(dir + "/results.csv", results_csv(r));
    write_text(dir + "/per_image.csv", per_image_csv(r));
}
void write_markdown(const EvaluationResults& r, const std::string& dir) { write_text(dir + "/results.md", results_markdown(r)); }
void write_curves_csv(const EvaluationResults& r, const std::string& dir) { write_text(dir + "/curves.csv", curves_csv(r)); }

void write_plots(const std::vector<EvaluationPlot>& plots, const std::string& dir) {
    for (const auto& p : plots) write_text(dir + "/" + p.file, p.svg);
}

void write_html_report(const EvaluationResults& r, const std::vector<EvaluationPlot>& plots, const std::string& dir) {
    save_html(dir + "/report.html", evaluation_report(r, plots));
}

void write_run_json(const EvaluationResults& r, const std::string& dir) {
    std::vector<std::string> methods;
    for (const auto& m : r.methods) methods.push_back(m.spec.text);
    const nlohmann::json run = {{"command", "evaluate"},
                                {"glassbox_version", GB_VERSION},
                                {"checkpoint", r.checkpoint},
                                {"model", r.model},
                                {"data", r.data + " " + r.split},
                                {"samples", r.samples},
                                {"methods", methods},
                                {"metrics", r.options.metrics},
                                {"seed", r.options.seed},
                                {"target", r.options.target},
                                {"canonizer", r.canonizer},
                                {"canonizer_note", r.any_lrp() ? r.canonizer_note : ""}};
    write_text(dir + "/run.json", run.dump(2) + "\n");
}

void write_evaluation(const EvaluationResults& r, const std::string& dir) {
    write_results_csv(r, dir);
    write_markdown(r, dir);
    write_curves_csv(r, dir);
    const std::vector<EvaluationPlot> plots = render_plots(r);
    write_plots(plots, dir);
    write_html_report(r, plots, dir);
    write_run_json(r, dir);
}

}  // namespace gb::explain
