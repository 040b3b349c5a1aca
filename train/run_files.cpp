// trainer.cpp's helpers (run_files.h) and the free functions of trainer.h that are not the Trainer: metrics_csv,
// metrics_json and the test pass (evaluate).
#include "train/run_files.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/parse.h"
#include "io/safetensors.h"
#include "train/data_parallel.h"
#include "train/progress.h"

namespace gb::train {

namespace detail {

std::string fmt(double v, int digits) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(digits) << v;
    return s.str();
}

nlohmann::json history_json(const std::vector<EpochRecord>& h) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& r : h)
        a.push_back({{"epoch", r.epoch},
                     {"lr", r.lr},
                     {"train_loss", r.train_loss},
                     {"train_accuracy", r.train_acc},
                     {"test_loss", r.test_loss},
                     {"test_accuracy", r.test_acc},
                     {"seconds", r.seconds},
                     {"images_per_second", r.images_per_s}});
    return a;
}

// A resume file's metadata entry, or an error naming the file and the key.
const std::string& resume_entry(const std::map<std::string, std::string>& meta, const std::string& key,
                                const std::string& source) {
    auto it = meta.find(key);
    GB_CHECK(it != meta.end(), source, ": metadata '", key, "' is missing (a damaged resume file?)");
    return it->second;
}

std::vector<EpochRecord> history_from_json(const std::string& text, const std::string& source) {
    std::vector<EpochRecord> out;
    try {
        for (const auto& e : nlohmann::json::parse(text)) {
            EpochRecord r;
            r.epoch = e.at("epoch").get<int64_t>();
            r.lr = e.at("lr").get<double>();
            r.train_loss = e.at("train_loss").get<double>();
            r.train_acc = e.at("train_accuracy").get<double>();
            r.test_loss = e.at("test_loss").get<double>();
            r.test_acc = e.at("test_accuracy").get<double>();
            r.seconds = e.at("seconds").get<double>();
            r.images_per_s = e.at("images_per_second").get<double>();
            out.push_back(r);
        }
    } catch (const nlohmann::json::exception& e) {
        GB_FAIL(source, ": the training history in the metadata is unreadable: ", e.what());
    }
    return out;
}

// Doubles in resume metadata are written as hex floats: exact, so a resumed
// epoch's running sums are the same bits as an uninterrupted run's.
std::string exact(double v) {
    std::ostringstream s;
    s << std::hexfloat << v;
    return s.str();
}

double parse_exact(const std::string& text, const std::string& what) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    GB_CHECK(!text.empty() && end == text.c_str() + text.size() && std::isfinite(v) && v >= 0, what, " is '", text,
             "', not a finite number >= 0");
    return v;
}

// Name of the first tensor holding a NaN or an infinity ("" when all are finite).
std::string first_non_finite(const models::NamedTensors& tensors) {
    for (const auto& [name, t] : tensors) {
        if (count_non_finite(t) > 0) return name;
    }
    return "";
}

// "epoch 3" (3 epochs done) or "batch 40 of epoch 4" (mid-epoch resume state).
std::string moment_text(const std::string& epoch, const std::string& batch) {
    if (batch.empty() || batch == "0") return "epoch " + epoch;
    int64_t e = 0;
    try {
        e = parse_int(epoch, 0, INT32_MAX, "epoch");
    } catch (const Error&) {
        return "epoch " + epoch + ", batch " + batch;
    }
    return "batch " + batch + " of epoch " + std::to_string(e + 1);
}

// What is on disk under `path`, read back from the file itself (so the words are
// true whatever happened before): "<path> is from epoch 3", "there is no <path>".
static std::string on_disk(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return "there is no " + path;
    try {
        const io::SafeTensors f = io::load_safetensors(path);
        auto get = [&](const char* k) {
            auto it = f.metadata.find(k);
            return it == f.metadata.end() ? std::string() : it->second;
        };
        if (get("train.epoch").empty()) return path + " is not from a training run";
        return path + " is from " + moment_text(get("train.epoch"), get("train.batch"));
    } catch (const std::exception& e) {
        return path + " is unreadable (" + e.what() + ")";
    }
}

// Which checkpoint files are current, for every error that stops a run.
std::string current_files(const std::string& model_path, const std::string& resume_path) {
    std::error_code ec;
    const bool resume = std::filesystem::exists(resume_path, ec);
    return on_disk(model_path) + ", " + on_disk(resume_path) +
           (resume ? " (resume with it: --resume " + resume_path + ")" : " (a new run starts from the beginning)");
}

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& c, models::NamedTensors params) {
    if (c.optimizer == "sgd") {
        kernels::SgdParams p;
        p.lr = c.lr;
        p.momentum = c.momentum;
        p.nesterov = c.nesterov && c.momentum > 0.f;  // plain SGD when momentum is off
        p.weight_decay = c.weight_decay;
        return std::make_unique<Sgd>(std::move(params), p);
    }
    if (c.optimizer == "adam" || c.optimizer == "adamw") {
        kernels::AdamParams p;
        p.lr = c.lr;
        p.weight_decay = c.weight_decay;
        p.decoupled = c.optimizer == "adamw";
        return std::make_unique<Adam>(std::move(params), p);
    }
    GB_FAIL("unknown optimizer '", c.optimizer, "' (expected sgd, adam or adamw)");
}

}  // namespace detail

using detail::fmt;

std::string metrics_csv(const std::vector<EpochRecord>& history) {
    std::ostringstream s;
    s << "epoch,lr,train_loss,train_accuracy,test_loss,test_accuracy,seconds,images_per_second\n";
    s << std::setprecision(6);
    for (const auto& r : history)
        s << r.epoch << "," << r.lr << "," << r.train_loss << "," << r.train_acc << "," << r.test_loss << ","
          << r.test_acc << "," << r.seconds << "," << r.images_per_s << "\n";
    return s.str();
}

std::string metrics_json(const std::vector<EpochRecord>& history) { return detail::history_json(history).dump(2) + "\n"; }

EvalResult evaluate(layers::Layer& model, const io::Dataset& all, const LoaderOptions& loader, Device device,
                    std::ostream* progress, const dist::Comm* comm) {
    // Whatever the training loader does: every image once, in order, as it is (only normalised).
    LoaderOptions opt = loader;
    opt.shuffle = false;
    opt.crop_padding = 0;
    opt.hflip = false;
    opt.drop_last = false;
    // Across ranks: this rank's shard of the images; the sums are the ranks' sums.
    const dist::Comm& ranks = comm ? *comm : dist::self();
    const dist::Shard shard = dist::shard_of(all.size(), ranks.rank(), ranks.size());
    const io::Dataset data = ranks.size() > 1 ? all.rows(shard.first, shard.count) : all;
    const bool was_training = model.is_training();
    model.eval();
    autograd::NoGradGuard no_grad;
    EvalResult r;
    r.confusion = ConfusionMatrix(all.classes());
    double loss_sum = 0;
    if (data.size() > 0) {
        DataLoader dl(data, opt);
        std::unique_ptr<Progress> bar;
        if (progress)
            bar = std::make_unique<Progress>("  test", dl.size(), *progress, Progress::is_terminal(*progress));
        int64_t seen = 0;
        for (int64_t b = 0; b < dl.size(); ++b) {
            Batch batch = dl.batch(b);
            const Tensor logits = model(batch.images.to(device));
            const Tensor labels = batch.labels.to(device);
            loss_sum +=
                static_cast<double>(cross_entropy(logits, labels).item()) * static_cast<double>(batch.labels.numel());
            r.confusion.add(predictions(logits), batch.labels);
            seen += batch.labels.numel();
            if (bar) bar->update(b + 1, seen, {{"acc", fmt(100 * r.confusion.accuracy(), 2) + "%"}});
        }
        r.seconds = bar ? bar->finish() : 0;
    }
    if (ranks.size() > 1) {
        ranks.allreduce_sum(&loss_sum, 1);
        r.confusion.sum_over(ranks);
    }
    r.loss = loss_sum / static_cast<double>(std::max<int64_t>(1, r.confusion.total()));
    model.train(was_training);
    return r;
}

}  // namespace gb::train
