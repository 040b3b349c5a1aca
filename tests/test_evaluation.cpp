// explain/evaluation: run_evaluation called as a library gives the numbers and files that
// `glassbox evaluate` writes for the same run (the CLI is a thin caller); its wiring checked
// against the metrics called directly on a linear model; bad plans refused; the C++ snippet of
// docs/evaluation.md, compiled and run.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <regex>
#include <sstream>

#include "cli_run.h"
#include "core/parallel.h"
#include "explain/evaluation.h"
#include "explain/perturbation.h"
#include "idx_writer.h"
#include "io/dataset.h"
#include "models/checkpoint.h"
#include "toy_models.h"

using namespace gb;
using namespace gb::testing;
using namespace gb::explain;

namespace {

// The fields of one CSV line (RFC 4180: a field in double quotes may hold commas, "" is a quote).
std::vector<std::string> csv_cells(const std::string& line) {
    std::vector<std::string> cells(1);
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
            cells.back() += '"';
            ++i;
        } else if (c == '"') {
            quoted = !quoted;
        } else if (c == ',' && !quoted) {
            cells.emplace_back();
        } else {
            cells.back() += c;
        }
    }
    REQUIRE(!quoted);
    return cells;
}

// results.csv as (method, metric) -> (mean, stderr, ci95_low, ci95_high, samples, note) text.
std::map<std::pair<std::string, std::string>, std::vector<std::string>> read_results_csv(const std::string& path) {
    std::map<std::pair<std::string, std::string>, std::vector<std::string>> rows;
    std::istringstream in(read_text(path));
    std::string line;
    std::getline(in, line);
    REQUIRE(line == "method,metric,mean,stderr,ci95_low,ci95_high,samples,note");
    while (std::getline(in, line)) {
        const std::vector<std::string> cells = csv_cells(line);
        REQUIRE(cells.size() == 8u);
        rows[{cells[0], cells[1]}] = std::vector<std::string>(cells.begin() + 2, cells.end());
    }
    return rows;
}

// A text without what depends on the clock: the run's total time and the seconds-per-image column.
std::string without_timings(const std::string& text) {
    std::string t = std::regex_replace(text, std::regex("total [0-9:.]+( s)?\\."), "total T.");
    t = std::regex_replace(t, std::regex("\\| [0-9]+\\.[0-9]{4} \\|"), "| S |");
    return std::regex_replace(t, std::regex("<td>[0-9]+\\.[0-9]{4}</td>"), "<td>S</td>");
}

std::vector<std::string> files_in(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

// The C++ example of docs/evaluation.md ("From C++"), word for word but for the paths.
void docs_example(const std::string& checkpoint, const std::string& data_dir, const std::string& out) {
    gb::models::Checkpoint ck = gb::models::load_checkpoint(checkpoint, "vgg-mini");
    const gb::io::Dataset test = gb::io::load_dataset("fashion-mnist", gb::io::Split::Test, data_dir).head(8);

    gb::explain::EvaluationPlan plan;
    plan.model = ck.model;
    plan.inputs = test.images;  // vgg-mini here takes raw [0, 1] pixels: no normalisation
    plan.labels = test.labels.to_vector<int32_t>();
    plan.methods = {"lrp:epsilon-plus-flat", "gradcam", "random"};
    plan.preset = gb::explain::PresetOptions::with_range(0.f, 1.f);  // the input range after normalisation
    plan.options.metrics = {"deletion", "insertion"};
    plan.options.batch = 4;
    plan.data = "fashion-mnist";
    plan.split = "test";

    const gb::explain::EvaluationResults results = gb::explain::run_evaluation(plan);
    const gb::explain::Summary deletion = results.method("gradcam").summary("deletion");
    std::cout << "gradcam deletion AUC " << deletion.mean << " ± " << deletion.standard_error << "\n";
    std::filesystem::create_directories(out);
    gb::explain::write_evaluation(results, out);  // results.csv, results.md, curves.csv, plots, report.html, run.json
}

}  // namespace

TEST_CASE("run_evaluation gives the numbers and files of glassbox evaluate for the same run") {
    set_num_threads(1);  // as --threads 1: the same arithmetic in both processes
    TempDir dir("evaluation");
    write_fake_mnist(dir.path(), 10, 8, 28, true);
    const std::string ck_path = data_file("vgg_mini.model.safetensors");
    // Two methods that use the batch's trace and the randomisation check, which rewrites (and
    // restores) the weights that trace saved: both still get their maps from it.
    const Run cli = run("evaluate --checkpoint " + ck_path + " --model vgg-mini --data-dir " + dir.path() +
                        " --limit 5 --batch-size 2 --method saliency --method lrp:epsilon-plus-flat --method occlusion:window=7,stride=7"
                        " --metric aopc --metric deletion --metric insertion --metric randomisation --metric sensitivity"
                        " --metric conservation --replacement noise --replacement black --steps 3 --aopc-steps 3"
                        " --sensitivity-samples 2 --seed 5 --threads 1 --out " + dir.path("cli"));
    INFO(cli.out);
    REQUIRE(cli.code == 0);

    models::Checkpoint ck = models::load_checkpoint(ck_path, "vgg-mini");
    const io::Dataset test = io::load_dataset("fashion-mnist", io::Split::Test, dir.path()).head(5);
    EvaluationPlan plan;
    plan.model = ck.model;
    plan.inputs = test.images;  // the checkpoint has no normalisation: the CLI gives raw pixels too
    plan.labels = test.labels.to_vector<int32_t>();
    plan.methods = {"saliency", "lrp:epsilon-plus-flat", "occlusion:window=7,stride=7"};
    plan.preset = PresetOptions::for_normalization({0.f}, {1.f});
    plan.options.metrics = {"aopc", "deletion", "insertion", "randomisation", "sensitivity", "conservation"};
    plan.options.batch = 2;
    plan.options.replacements = {"noise", "black"};
    plan.options.steps = 3;
    plan.options.aopc_steps = 3;
    plan.options.sensitivity_samples = 2;
    plan.options.seed = 5;
    plan.data = "fashion-mnist";
    plan.split = "test";
    plan.checkpoint = ck_path;
    const EvaluationResults r = run_evaluation(plan);

    // Every number of the CLI's results.csv is the library's, to the 6 decimals printed.
    auto same = [](const std::string& printed, double value) { return std::fabs(std::stod(printed) - value) <= 5.01e-7; };
    const auto rows = read_results_csv(dir.path("cli/results.csv"));
    // A spec with a comma is one quoted field (RFC 4180), in both files.
    CHECK(read_text(dir.path("cli/results.csv")).find("\n\"occlusion:window=7,stride=7\",aopc") != std::string::npos);
    CHECK(read_text(dir.path("cli/curves.csv")).find("\n\"occlusion:window=7,stride=7\",") != std::string::npos);
    size_t expected_rows = 0;
    for (const auto& m : r.methods) {
        for (const auto& [key, header] : r.columns) {
            const auto& row = rows.at({m.spec.text, key});
            if (key == "conservation" && m.spec.name != "lrp") {
                // Saliency and occlusion do not sum to anything: no numbers, the reason instead.
                CHECK(!m.applies(key));
                CHECK(m.values.count(key) == 0u);
                CHECK(row[0].empty());
                CHECK(row[4] == "0");
                CHECK(row[5] == "n/a: " + m.not_applicable.at(key));
                continue;
            }
            const Summary s = m.summary(key);
            CHECK(same(row[0], s.mean));
            CHECK(same(row[1], s.standard_error));
            // The 95% interval of the mean over 5 images: Student's t with 4 degrees of freedom.
            CHECK(same(row[2], s.mean - 2.7764 * s.standard_error));
            CHECK(same(row[3], s.mean + 2.7764 * s.standard_error));
            CHECK(row[4] == "5");
            CHECK(row[5].empty());
            CHECK(m.values.at(key).size() == 5u);
        }
        REQUIRE(!m.randomisation.empty());
        for (const auto& s : m.randomisation) {
            CHECK(same(rows.at({m.spec.text, "randomisation.spearman_abs." + s.layer})[0], s.spearman_abs));
            CHECK(same(rows.at({m.spec.text, "randomisation.spearman." + s.layer})[0], s.spearman));
            CHECK(same(rows.at({m.spec.text, "randomisation.ssim." + s.layer})[0], s.ssim));
        }
        expected_rows += r.columns.size() + 3 * m.randomisation.size();
    }
    CHECK(r.columns.size() == 6u);  // AOPC twice, deletion, insertion, sensitivity, conservation
    CHECK(rows.size() == expected_rows);
    // per_image.csv: a row per image, method and per-image value (n/a metrics left out), the library's values
    // to the 6 decimals printed; the explained class is the prediction (the default target).
    {
        std::istringstream in(read_text(dir.path("cli/per_image.csv")));
        std::string line;
        std::getline(in, line);
        REQUIRE(line == "image,label,predicted,target,method,metric,value");
        size_t count = 0;
        while (std::getline(in, line)) {
            const auto cells = csv_cells(line);
            REQUIRE(cells.size() == 7u);
            const auto n = static_cast<size_t>(std::stoi(cells[0]));
            CHECK(std::stoi(cells[1]) == r.labels[n]);
            CHECK(std::stoi(cells[2]) == r.predicted[n]);
            CHECK(cells[3] == cells[2]);
            const MethodEvaluation& m = r.method(cells[4]);
            const std::string& key = cells[5];
            double value = 0;
            if (key.rfind("randomisation.", 0) == 0) {
                for (const auto& s : m.randomisation) {
                    if (key == "randomisation.spearman_abs." + s.layer) value = s.spearman_abs_per_sample[n];
                    if (key == "randomisation.spearman." + s.layer) value = s.spearman_per_sample[n];
                    if (key == "randomisation.ssim." + s.layer) value = s.ssim_per_sample[n];
                }
            } else {
                value = m.values.at(key)[n];
            }
            CHECK(same(cells[6], value));
            ++count;
        }
        size_t expected = 0;
        for (const auto& m : r.methods) expected += 5 * (m.values.size() + 3 * m.randomisation.size());
        CHECK(count == expected);
    }
    // And the files: the same names, the same bytes but for timings and the report's date.
    std::filesystem::create_directories(dir.path("lib"));
    write_evaluation(r, dir.path("lib"));
    CHECK(files_in(dir.path("lib")) == files_in(dir.path("cli")));
    for (const char* f : {"results.csv", "per_image.csv", "curves.csv", "run.json", "aopc-noise_curves.svg", "aopc-black_curves.svg",
                          "deletion_curves.svg", "insertion_curves.svg", "randomisation.svg"})
        CHECK_MESSAGE(read_text(dir.path("lib/") + f) == read_text(dir.path("cli/") + f), f);
    CHECK(without_timings(read_text(dir.path("lib/results.md"))) == without_timings(read_text(dir.path("cli/results.md"))));
    const std::regex date("[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]+");
    CHECK(std::regex_replace(without_timings(read_text(dir.path("lib/report.html"))), date, "D") ==
          std::regex_replace(without_timings(read_text(dir.path("cli/report.html"))), date, "D"));
}

TEST_CASE("run_evaluation on a linear model: each metric as computed directly, per batch, with progress") {
    LinearModel lm(1, 8, 8, 3, 31, /*bias=*/false);
    const Tensor x = rand_tensor(Shape{5, 1, 8, 8}, 32, 0.f, 1.f);
    const auto logits = predict(*lm.model, x).to_vector<float>();
    std::vector<int32_t> predicted, labels;
    for (int64_t n = 0; n < 5; ++n) {
        const float* l = logits.data() + n * 3;
        predicted.push_back(static_cast<int32_t>(std::max_element(l, l + 3) - l));
        labels.push_back(n < 3 ? predicted.back() : (predicted.back() + 1) % 3);  // 3 of 5 right
    }
    EvaluationPlan plan;
    plan.model = lm.model;
    plan.inputs = x;
    plan.labels = labels;
    plan.methods = {"lrp:lrp0", "random:seed=2", "ig:steps=4", "deeplift"};
    plan.preset = PresetOptions::with_range(0.f, 1.f);
    plan.options.metrics = {"conservation", "deletion", "aopc"};
    plan.options.replacements = {"mean"};
    plan.options.batch = 2;
    plan.options.steps = 4;
    plan.options.aopc_steps = 5;
    std::vector<std::vector<int64_t>> progress;
    const EvaluationResults r = run_evaluation(plan, [&](const EvaluationProgress& p) {
        progress.push_back({p.batch, p.batches, p.images, p.correct});
    });
    CHECK(progress.size() == 3u);
    CHECK(progress.back() == std::vector<int64_t>{3, 3, 5, 3});
    CHECK(r.correct == 3);
    CHECK(r.samples == 5);
    // Columns in table order, whatever the order of the metrics asked for.
    REQUIRE(r.columns.size() == 3u);
    CHECK(r.columns[0].first == "aopc-mean");
    CHECK(r.columns[1].first == "deletion");
    CHECK(r.columns[2].first == "conservation");
    // LRP-0 on a bias-free linear model conserves the one-hot seed (tolerance 1e-5, float32); IG and DeepLIFT sum
    // to the logit's change from the zero baseline, exactly for a linear model (the gradient is constant).
    for (const char* m : {"lrp:lrp0", "ig:steps=4", "deeplift"})
        for (double e : r.method(m).values.at("conservation")) CHECK_MESSAGE(e < 1e-5, m);
    // A random map sums to nothing: the metric does not apply, and says why.
    CHECK(r.method("random:seed=2").values.count("conservation") == 0u);
    CHECK(r.method("random:seed=2").not_applicable.at("conservation") == "the map sums to nothing in particular");
    CHECK(r.targets == predicted);  // the default target: the prediction
    CHECK(r.predicted == predicted);
    CHECK(r.labels == labels);
    // The curves and their areas are those of perturbation_curves on each batch's maps (the same
    // options: black = low = 0, probabilities, seeded ties). Bit for bit with g++; 1e-6 relative
    // because run_evaluation scores the unperturbed point with the trace's forward and
    // perturbation_curves with a forward of its own, which another compiler (clang's FMA
    // contraction in the fuzz build) may round differently.
    for (const auto& m : r.methods)
        for (int64_t start = 0; start < 5; start += 2) {
            const int64_t B = std::min<int64_t>(2, 5 - start);
            const Tensor xb = x.narrow(start, B);
            Trace t(*lm.model, xb);
            const Tensor map = attribute(t, m.spec, {Target::predicted()}, plan.preset).map;
            const std::vector<int32_t> cls(predicted.begin() + start, predicted.begin() + start + B);
            PerturbationOptions del;
            del.steps = 4;
            del.value = 0.f;
            del.probability = true;
            const auto area = area_per_sample(perturbation_curves(*lm.model, xb, map, cls, del));
            for (int64_t n = 0; n < B; ++n)
                CHECK(m.values.at("deletion")[static_cast<size_t>(start + n)] ==
                      doctest::Approx(area[static_cast<size_t>(n)]).epsilon(1e-6));
        }
    CHECK(r.method("random:seed=2").curves.at("aopc-mean").samples == 5);
    CHECK(r.method("random:seed=2").curves.at("aopc-mean").points == 6);
    CHECK_THROWS_WITH_AS(r.method("saliency"), doctest::Contains("no results for method 'saliency'"), Error);
    CHECK_THROWS_WITH_AS(r.methods[0].summary("sensitivity"), doctest::Contains("no values for 'sensitivity'"), Error);

    SUBCASE("bad plans are refused with what is wrong") {
        auto fails = [&](const EvaluationPlan& p, const std::string& words) {
            CHECK_THROWS_WITH_AS(run_evaluation(p), doctest::Contains(words.c_str()), Error);
        };
        EvaluationPlan p = plan;
        p.methods = {"random", "random"};
        fails(p, "method random is given twice");
        p = plan;
        p.methods = {"occlude"};
        fails(p, "unknown method 'occlude'");
        p = plan;
        p.options.metrics = {"faithfulness"};
        fails(p, "unknown metric 'faithfulness'");
        p = plan;
        p.options.replacements = {"mean", "mean"};
        fails(p, "replacement 'mean' is given twice");
        p = plan;
        p.preset = PresetOptions();
        fails(p, "needs the input range");
        p = plan;
        p.labels.pop_back();
        fails(p, "4 labels for 5 images");
        p = plan;
        p.options.target = "best";
        fails(p, "the target (pred, true or a class index)");
        p = plan;
        p.options.target = "3";
        fails(p, "target class 3 of image 0 is outside the model's 3 classes");
        p = plan;
        p.options.target = "true";
        p.labels[2] = -1;
        fails(p, "image 2 has none");
        p = plan;
        p.model.reset();
        fails(p, "no model");
    }

    SUBCASE("the target: the label or one class, explained and scored") {
        EvaluationPlan p = plan;
        p.options.target = "true";
        const EvaluationResults t = run_evaluation(p);
        CHECK(t.targets == labels);
        CHECK(t.predicted == predicted);
        CHECK(t.correct == 3);
        // The first three images are classified right, so their values are the predicted class's; the last two
        // explain and score their label: the deletion area of that class's probability, as computed directly.
        const MethodEvaluation& m = t.method("lrp:lrp0");
        for (size_t n = 0; n < 3; ++n)
            CHECK(m.values.at("deletion")[n] == r.method("lrp:lrp0").values.at("deletion")[n]);
        const Tensor xb = x.narrow(3, 2);
        Trace tr(*lm.model, xb);
        const Tensor map = attribute(tr, m.spec, {Target::of(labels[3]), Target::of(labels[4])}, plan.preset).map;
        PerturbationOptions del;
        del.steps = 4;
        del.value = 0.f;
        del.probability = true;
        const auto area = area_per_sample(perturbation_curves(*lm.model, xb, map, {labels[3], labels[4]}, del));
        CHECK(m.values.at("deletion")[3] == doctest::Approx(area[0]).epsilon(1e-6));
        CHECK(m.values.at("deletion")[4] == doctest::Approx(area[1]).epsilon(1e-6));
        p.options.target = "1";
        CHECK(run_evaluation(p).targets == std::vector<int32_t>(5, 1));
    }
}

TEST_CASE("student_t_975: the t table, and the normal quantile in the limit") {
    // References: the two-sided 95% t table (4 decimals) and R's qt(0.975, df).
    CHECK(student_t_975(1) == doctest::Approx(12.7062).epsilon(1e-5));
    CHECK(student_t_975(4) == doctest::Approx(2.7764).epsilon(1e-5));
    CHECK(student_t_975(30) == doctest::Approx(2.0423).epsilon(1e-5));
    CHECK(student_t_975(31) == doctest::Approx(2.039513).epsilon(5e-5));
    CHECK(student_t_975(60) == doctest::Approx(2.000298).epsilon(5e-5));
    CHECK(student_t_975(120) == doctest::Approx(1.979930).epsilon(5e-5));
    CHECK(student_t_975(1000000) == doctest::Approx(1.959964).epsilon(1e-6));
    CHECK_THROWS_AS(student_t_975(0), Error);
    const Summary s = summarize({1.0, 2.0, 3.0});  // mean 2, SE 1/sqrt(3), t(2) = 4.3027
    CHECK(s.ci95 == doctest::Approx(4.3027 / std::sqrt(3.0)).epsilon(1e-6));
}

TEST_CASE("the C++ example of docs/evaluation.md runs and writes the evaluate files") {
    TempDir dir("evaluation-docs");
    write_fake_mnist(dir.path(), 10, 8, 28, true);
    docs_example(data_file("vgg_mini.model.safetensors"), dir.path(), dir.path("eval"));
    for (const char* f : {"results.csv", "results.md", "curves.csv", "deletion_curves.svg", "insertion_curves.svg", "report.html", "run.json"})
        CHECK_MESSAGE(std::filesystem::exists(dir.path("eval/") + f), f);
    CHECK(read_text(dir.path("eval/results.csv")).find("gradcam,deletion,") != std::string::npos);
}
