#include "explain/pruning_run.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/factory.h"
#include "explain/plot.h"
#include "explain/report.h"
#include "io/dataset.h"
#include "io/file_util.h"
#include "models/prune.h"
#include "train/trainer.h"

namespace gb::explain {

namespace {

// Rows `indices` of the dataset's images, normalised per channel.
Tensor normalized_rows(const io::Dataset& d, const std::vector<int64_t>& indices, const std::vector<float>& mean,
                       const std::vector<float>& stddev) {
    const int64_t c = d.channels(), area = d.height() * d.width(), per = c * area;
    const Tensor images = d.images.to(Device::cpu());
    const float* src = images.data<float>();
    std::vector<float> out(indices.size() * static_cast<size_t>(per));
    for (size_t i = 0; i < indices.size(); ++i)
        for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t p = 0; p < area; ++p)
                out[i * per + ch * area + p] = (src[indices[i] * per + ch * area + p] - mean[ch]) / stddev[ch];
    return from_vector(out, Shape{static_cast<int64_t>(indices.size()), c, d.height(), d.width()});
}

double accuracy(models::Vgg& model, const io::Dataset& test, const train::LoaderOptions& loader) {
    model.eval();
    return train::evaluate(model, test, loader, Device::cpu()).confusion.accuracy();
}

int64_t filter_count(const models::Vgg& m) {
    int64_t n = 0;
    for (int64_t w : m.config().features) n += w;
    return n;
}

// Median milliseconds of one forward pass of `x` (after two warm-up passes).
double time_forward(models::Vgg& model, const Tensor& x, int64_t runs) {
    autograd::NoGradGuard no_grad;
    model.eval();
    for (int i = 0; i < 2; ++i) model(x);
    std::vector<double> ms;
    for (int64_t r = 0; r < runs; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        model(x);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

// Fine-tunes `model` in place with train::Trainer: `epochs` over the first `limit` training images.
void finetune(const std::shared_ptr<models::Vgg>& model, int64_t epochs, int64_t limit, const PruneRunOptions& o,
              const std::vector<float>& mean, const std::vector<float>& stddev, std::ostream& log) {
    train::TrainConfig c;
    c.model = model->config().name;
    c.data = o.data;
    c.data_dir = o.data_dir;
    c.epochs = epochs;
    c.batch_size = o.batch_size;
    c.lr = o.finetune_lr;
    c.train_limit = limit;
    c.test_limit = 1;  // the Trainer's own evaluation is not run here
    c.seed = o.seed;
    c.out_dir = o.out;  // nothing is written: only train_epoch() runs
    train::Trainer t(c, log);
    t.start_from(model, mean, stddev);
    for (int64_t e = 0; e < epochs; ++e) t.train_epoch();
    model->eval();
}

std::string fixed(double v, int digits) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(digits) << v;
    return s.str();
}

}  // namespace

std::string cpu_name() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("model name", 0) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
        }
    return "unknown CPU";
}

std::map<std::string, std::string> pruned_metadata(const std::map<std::string, std::string>& source,
                                                   const models::Vgg& pruned, const std::string& criterion,
                                                   double rate, const std::string& source_name) {
    std::map<std::string, std::string> meta;
    // The source's conventions (normalisation, class names, dataset) stay; its training record and accuracy
    // describe another model.
    for (const auto& [k, v] : source)
        if (k.rfind("train.", 0) != 0 && k != "test_accuracy" && k != "format" && k != "glassbox_version") meta[k] = v;
    for (const auto& [k, v] : pruned.config().to_metadata()) meta[k] = v;
    meta["prune.criterion"] = criterion;
    meta["prune.rate"] = fixed(rate, 6);
    meta["prune.source"] = source_name;
    return meta;
}

PruneRunResult run_prune(const PruneRunOptions& o, std::ostream& log) {
    const PruneCriterion criterion = parse_prune_criterion(o.criterion);
    GB_CHECK(o.rate > 0 && o.rate < 1, "prune: --rate must be inside (0, 1), got ", o.rate);
    for (double r : o.curve_rates) GB_CHECK(r > 0 && r < 1, "prune: curve rate ", r, " is outside (0, 1)");
    GB_CHECK(o.finetune >= 0 && o.finetune_limit >= 0 && o.curve_finetune_limit >= 0 && o.test_limit >= 0,
             "prune: epochs and limits must be >= 0");
    GB_CHECK(o.batch_size > 0 && o.timing_batch > 0 && o.timing_runs > 0, "prune: batch sizes and runs must be > 0");
    models::Checkpoint ck = models::load_checkpoint(o.checkpoint);
    models::Vgg& source = *ck.model;
    source.to(Device::cpu());
    source.eval();
    const int64_t channels = source.config().in_channels;
    std::vector<float> mean(static_cast<size_t>(channels), 0.f), stddev(static_cast<size_t>(channels), 1.f);
    if (!models::read_normalization(ck.metadata(), o.checkpoint, mean, stddev))
        log << "prune: " << o.checkpoint << " records no input normalisation; the images are used as they are\n";

    const io::Dataset train_set = io::load_dataset(o.data, io::Split::Train, o.data_dir);
    const io::Dataset test_set = io::load_dataset(o.data, io::Split::Test, o.data_dir).head(o.test_limit);
    GB_CHECK(train_set.channels() == channels && train_set.height() == source.config().input_size &&
                 train_set.classes() == source.config().num_classes,
             "prune: ", o.checkpoint, " takes ", channels, "x", source.config().input_size, " images in ",
             source.config().num_classes, " classes; ", o.data, " has ", train_set.channels(), "x",
             train_set.height(), " in ", train_set.classes());
    const std::vector<int64_t> ref_idx = reference_indices(train_set, o.reference_per_class);
    const Tensor reference = normalized_rows(train_set, ref_idx, mean, stddev);
    std::vector<int32_t> ref_labels;
    {
        const Tensor y = train_set.labels.to(Device::cpu());
        for (int64_t i : ref_idx) ref_labels.push_back(y.data<int32_t>()[i]);
    }
    train::LoaderOptions loader;
    loader.batch_size = o.batch_size;
    loader.shuffle = false;
    loader.mean = mean;
    loader.stddev = stddev;

    PruneRunResult r;
    r.cpu = cpu_name();
    r.parameters_before = source.num_parameters();
    r.filters_before = filter_count(source);
    log << "prune: " << source.describe() << ", " << r.filters_before << " filters, " << r.parameters_before
        << " parameters; reference set: " << ref_idx.size() << " training images (" << o.reference_per_class
        << " per class)\n";
    r.accuracy_before = accuracy(source, test_set, loader);
    log << "prune: test accuracy before pruning " << fixed(100 * r.accuracy_before, 2) << "% (" << test_set.size()
        << " images)\n";

    std::map<PruneCriterion, std::vector<FilterScores>> all_scores;
    auto scores_of = [&](PruneCriterion c) -> const std::vector<FilterScores>& {
        auto it = all_scores.find(c);
        if (it == all_scores.end()) {
            log << "prune: " << prune_criterion_name(c) << " scores\n";
            it = all_scores.emplace(c, filter_scores(source, c, reference, ref_labels)).first;
        }
        return it->second;
    };
    r.scores = scores_of(criterion);
    r.keep = filters_to_keep(r.scores, criterion, o.rate);
    r.model = models::prune(source, r.keep);
    r.filters_after = filter_count(*r.model);
    r.parameters_after = r.model->num_parameters();
    r.accuracy_pruned = accuracy(*r.model, test_set, loader);
    log << "prune: " << o.criterion << " at rate " << o.rate << ": " << r.filters_after << " filters, "
        << r.parameters_after << " parameters, test accuracy " << fixed(100 * r.accuracy_pruned, 2) << "%\n";
    if (o.finetune > 0) {
        log << "prune: fine-tuning " << o.finetune << " epoch(s)\n";
        finetune(r.model, o.finetune, o.finetune_limit, o, mean, stddev, log);
        r.accuracy_finetuned = accuracy(*r.model, test_set, loader);
        log << "prune: after fine-tuning " << fixed(100 * r.accuracy_finetuned, 2) << "%\n";
    }

    {
        std::vector<int64_t> idx;
        for (int64_t i = 0; i < std::min<int64_t>(o.timing_batch, test_set.size()); ++i) idx.push_back(i);
        const Tensor x = normalized_rows(test_set, idx, mean, stddev);
        r.ms_before = time_forward(source, x, o.timing_runs);
        r.ms_after = time_forward(*r.model, x, o.timing_runs);
        log << "prune: forward of " << idx.size() << " images: " << fixed(r.ms_before, 2) << " ms -> "
            << fixed(r.ms_after, 2) << " ms (" << fixed(r.ms_before / r.ms_after, 2) << "x) on " << r.cpu << "\n";
    }

    if (!o.curve_rates.empty()) {
        for (const std::string& name : prune_criterion_names()) {
            const PruneCriterion c = parse_prune_criterion(name);
            const auto& scores = scores_of(c);
            for (double rate : o.curve_rates) {
                CurvePoint p;
                p.criterion = name;
                p.rate = rate;
                std::shared_ptr<models::Vgg> m = models::prune(source, filters_to_keep(scores, c, rate));
                p.filters = filter_count(*m);
                p.parameters = m->num_parameters();
                p.accuracy = accuracy(*m, test_set, loader);
                if (o.curve_finetune_limit > 0) {
                    std::ostringstream quiet;  // the Trainer's log of each curve point
                    finetune(m, 1, o.curve_finetune_limit, o, mean, stddev, quiet);
                    p.accuracy_finetuned = accuracy(*m, test_set, loader);
                }
                log << "prune: curve " << name << " rate " << fixed(rate, 2) << ": " << fixed(100 * p.accuracy, 2)
                    << "%";
                if (p.accuracy_finetuned >= 0) log << ", fine-tuned " << fixed(100 * p.accuracy_finetuned, 2) << "%";
                log << "\n";
                r.curves.push_back(p);
            }
        }
    }

    // Files.
    const std::string model_path = o.out + "/model.safetensors";
    std::map<std::string, std::string> meta =
        pruned_metadata(ck.metadata(), *r.model, o.criterion, o.rate, o.checkpoint);
    meta["prune.test_accuracy"] = fixed(r.accuracy_finetuned >= 0 ? r.accuracy_finetuned : r.accuracy_pruned, 6);
    models::save_checkpoint(model_path, *r.model, meta);

    const auto norm = normalized_scores(r.scores, criterion);
    io::write_file_atomic(o.out + "/scores.csv", [&](std::ostream& out) {
        out << "layer,filter,score,normalized,kept\n" << std::setprecision(9);
        for (size_t l = 0; l < r.scores.size(); ++l)
            for (size_t f = 0; f < r.scores[l].scores.size(); ++f) {
                const bool kept = std::binary_search(r.keep[l].begin(), r.keep[l].end(), static_cast<int64_t>(f));
                out << r.scores[l].layer << "," << f << "," << r.scores[l].scores[f] << "," << norm[l][f] << ","
                    << (kept ? 1 : 0) << "\n";
            }
    });
    io::write_file_atomic(o.out + "/curves.csv", [&](std::ostream& out) {
        out << "criterion,rate,filters,parameters,accuracy,accuracy_finetuned\n";
        for (const auto& p : r.curves)
            out << p.criterion << "," << fixed(p.rate, 4) << "," << p.filters << "," << p.parameters << ","
                << fixed(p.accuracy, 6) << "," << (p.accuracy_finetuned >= 0 ? fixed(p.accuracy_finetuned, 6) : "")
                << "\n";
    });

    Report report;
    report.title = "glassbox prune";
    report.info = {{"Checkpoint", o.checkpoint},
                   {"Model", source.describe()},
                   {"Criterion", o.criterion},
                   {"Rate", fixed(o.rate, 3)},
                   {"Reference set", std::to_string(ref_idx.size()) + " training images (" +
                                         std::to_string(o.reference_per_class) + " per class)"},
                   {"Test images", std::to_string(test_set.size())},
                   {"CPU", r.cpu}};
    ReportSection summary;
    summary.title = "Pruned model";
    summary.text = "Forward time: median of " + std::to_string(o.timing_runs) + " passes of " +
                   std::to_string(std::min<int64_t>(o.timing_batch, test_set.size())) + " test images on the CPU.";
    summary.table = {{"", "filters", "parameters", "test accuracy", "forward (ms)"},
                     {"original", std::to_string(r.filters_before), std::to_string(r.parameters_before),
                      fixed(100 * r.accuracy_before, 2) + "%", fixed(r.ms_before, 2)},
                     {"pruned", std::to_string(r.filters_after), std::to_string(r.parameters_after),
                      fixed(100 * r.accuracy_pruned, 2) + "%", fixed(r.ms_after, 2)}};
    if (r.accuracy_finetuned >= 0)
        summary.table.push_back({"pruned, fine-tuned " + std::to_string(o.finetune) + " epoch(s)", "", "",
                                 fixed(100 * r.accuracy_finetuned, 2) + "%", ""});
    summary.table.push_back({"speedup", "", "", "", fixed(r.ms_before / r.ms_after, 2) + "x"});
    report.sections.push_back(summary);
    ReportSection layers_section;
    layers_section.title = "Filters kept per convolution";
    layers_section.table = {{"layer", "filters", "kept"}};
    for (size_t l = 0; l < r.scores.size(); ++l)
        layers_section.table.push_back({r.scores[l].layer, std::to_string(r.scores[l].scores.size()),
                                        std::to_string(r.keep[l].size())});
    report.sections.push_back(layers_section);
    if (!r.curves.empty()) {
        ReportSection curves;
        curves.title = "Accuracy versus pruning rate";
        curves.text = "One-shot pruning of the source model at each rate by each criterion; fine-tuned: one epoch "
                      "over the first " + std::to_string(o.curve_finetune_limit) + " training images.";
        curves.table = {{"criterion", "rate", "filters", "parameters", "accuracy", "fine-tuned"}};
        LinePlot plot{"Test accuracy versus pruning rate", "fraction of filters removed", "test accuracy (%)", {}};
        for (const std::string& name : prune_criterion_names()) {
            Series plain{name, {}, {}}, tuned{name + ", fine-tuned", {}, {}};
            for (const auto& p : r.curves) {
                if (p.criterion != name) continue;
                curves.table.push_back({p.criterion, fixed(p.rate, 2), std::to_string(p.filters),
                                        std::to_string(p.parameters), fixed(100 * p.accuracy, 2) + "%",
                                        p.accuracy_finetuned >= 0 ? fixed(100 * p.accuracy_finetuned, 2) + "%" : ""});
                plain.x.push_back(p.rate);
                plain.y.push_back(100 * p.accuracy);
                if (p.accuracy_finetuned >= 0) {
                    tuned.x.push_back(p.rate);
                    tuned.y.push_back(100 * p.accuracy_finetuned);
                }
            }
            plot.series.push_back(plain);
            if (!tuned.x.empty()) plot.series.push_back(tuned);
        }
        const std::string svg = render_line_plot_svg(plot);
        io::write_file_atomic(o.out + "/accuracy_vs_rate.svg", [&](std::ostream& out) { out << svg; });
        curves.svg_figures.push_back({"Test accuracy versus rate (accuracy_vs_rate.svg)", svg});
        report.sections.push_back(curves);
    }
    report.methods = {
        {"lrp", "Yeom et al. 2021: relevance at each filter's output (epsilon-plus composite, true-class logit), "
                "summed over the reference set; normalised by the layer's sum of |relevance|"},
        {"l1", "Li et al. 2017: sum of |weights| of the filter; normalised by the layer's sum"},
        {"taylor", "Molchanov et al. 2017: |mean over samples of sum over positions of a dC/da| (cross-entropy); "
                   "normalised by the layer's L2 norm"}};
    report.signed_colormap.clear();
    report.sequential_colormap.clear();
    save_html(o.out + "/report.html", report);
    log << "prune: written " << model_path << ", scores.csv, curves.csv"
        << (r.curves.empty() ? "" : ", accuracy_vs_rate.svg") << ", report.html in " << o.out << "\n";
    return r;
}

}  // namespace gb::explain
