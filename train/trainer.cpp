// The training loop (run_training) and the test pass (evaluate). What each file holds is in trainer.h; why they
// are written in this order is in docs/training.md ("Durable runs").
//
// run_training, in order:
//   1. Data: the train and test splits, cut to --train-limit / --test-limit.
//   2. Start. A new run builds the model from --model with Generator(seed), measures the normalisation on the
//      training split and seeds the default generator (dropout) with (seed, 0). A resume takes all of that from
//      resume.safetensors instead: model config, weights, normalisation, optimizer state (tensors "optimizer.*"
//      and metadata), the default generator's (seed, offset), the history, and the moment: train.epoch epochs done,
//      train.batch batches of the next one done (0: an epoch end). A mid-epoch resume also restores that epoch's
//      running sums, after checking that the batch size, seed and image count, hence its batches, are the same.
//   3. Each epoch: the loader's order and augmentation are pure functions of (seed, epoch, sample); for each batch
//      the learning rate from the schedule at the fractional epoch, forward, cross-entropy, a finite-loss check,
//      backward, optimizer step, and every --save-every batches a resume file (save_resume).
//   4. Each epoch end: finite weights and optimizer state, the test pass (its loss finite too), the EpochRecord,
//      then model.safetensors, metrics.csv, metrics.json and resume.safetensors, in that order.
// Invariants:
//   - Nothing non-finite is ever saved: the loss is checked at every batch before its step, the model and the
//     optimizer state before every save (check_finite), the test loss before the epoch's files. Every error says
//     which checkpoints are current, read back from the files themselves (current_files).
//   - resume.safetensors is written last and is the run's commit record: while it names an earlier moment, resuming
//     from it recomputes the later steps bit for bit and rewrites model.safetensors and the metrics, so whichever
//     write fails (write_or_explain) the files on disk can be resumed.
//   - Bit-for-bit resumption needs every input of the computation in the file, exactly: the weights, the optimizer
//     state, the default generator's offset, and the epoch's running sums as hex floats (exact(), not decimals).
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/parse.h"
#include "core/rng.h"
#include "io/file_util.h"
#include "models/checkpoint.h"
#include "models/registry.h"
#include "train/optimizer.h"
#include "train/progress.h"

namespace gb::train {

namespace {

using json = nlohmann::json;

std::string fmt(double v, int digits) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(digits) << v;
    return s.str();
}

json history_json(const std::vector<EpochRecord>& h) {
    json a = json::array();
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
        for (const auto& e : json::parse(text)) {
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
    } catch (const json::exception& e) {
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
std::string on_disk(const std::string& path) {
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

}  // namespace

std::string metrics_csv(const std::vector<EpochRecord>& history) {
    std::ostringstream s;
    s << "epoch,lr,train_loss,train_accuracy,test_loss,test_accuracy,seconds,images_per_second\n";
    s << std::setprecision(6);
    for (const auto& r : history)
        s << r.epoch << "," << r.lr << "," << r.train_loss << "," << r.train_acc << "," << r.test_loss << ","
          << r.test_acc << "," << r.seconds << "," << r.images_per_s << "\n";
    return s.str();
}

std::string metrics_json(const std::vector<EpochRecord>& history) { return history_json(history).dump(2) + "\n"; }

EvalResult evaluate(layers::Layer& model, const io::Dataset& data, const LoaderOptions& loader, Device device,
                    std::ostream* progress) {
    // Whatever the training loader does: every image once, in order, as it is (only normalised).
    LoaderOptions opt = loader;
    opt.shuffle = false;
    opt.crop_padding = 0;
    opt.hflip = false;
    opt.drop_last = false;
    DataLoader dl(data, opt);
    const bool was_training = model.is_training();
    model.eval();
    autograd::NoGradGuard no_grad;
    EvalResult r;
    r.confusion = ConfusionMatrix(data.classes());
    double loss_sum = 0;
    std::unique_ptr<Progress> bar;
    if (progress) bar = std::make_unique<Progress>("  test", dl.size(), *progress, Progress::is_terminal(*progress));
    int64_t seen = 0;
    for (int64_t b = 0; b < dl.size(); ++b) {
        Batch batch = dl.batch(b);
        const Tensor logits = model(batch.images.to(device));
        const Tensor labels = batch.labels.to(device);
        loss_sum += static_cast<double>(cross_entropy(logits, labels).item()) * static_cast<double>(batch.labels.numel());
        r.confusion.add(predictions(logits), batch.labels);
        seen += batch.labels.numel();
        if (bar) bar->update(b + 1, seen, {{"acc", fmt(100 * r.confusion.accuracy(), 2) + "%"}});
    }
    r.seconds = bar ? bar->finish() : 0;
    r.loss = loss_sum / static_cast<double>(std::max<int64_t>(1, seen));
    model.train(was_training);
    return r;
}

TrainResult run_training(const TrainConfig& c, std::ostream& log) {
    namespace fs = std::filesystem;
    GB_CHECK(c.epochs > 0, "train: --epochs must be at least 1, got ", c.epochs);
    GB_CHECK(c.batch_size > 0, "train: --batch-size must be positive, got ", c.batch_size);
    GB_CHECK(c.save_every >= 0, "train: --save-every must be >= 0, got ", c.save_every);
    Schedule sched = c.schedule;
    sched.base_lr = c.lr;
    sched.total_epochs = c.epochs;
    sched.validate();

    const io::Dataset train_full = io::load_dataset(c.data, io::Split::Train, c.data_dir);
    const io::Dataset test_full = io::load_dataset(c.data, io::Split::Test, c.data_dir);
    const io::Dataset train_set = train_full.head(c.train_limit), test_set = test_full.head(c.test_limit);
    GB_CHECK(train_set.height() == train_set.width(), "train: images are ", train_set.height(), "x",
             train_set.width(), "; the VGG models take square images");
    log << "data: " << c.data << ": " << train_set.size() << " training and " << test_set.size() << " test images of "
        << train_set.channels() << "x" << train_set.height() << "x" << train_set.width() << ", "
        << train_set.classes() << " classes\n";

    std::shared_ptr<models::Vgg> model;
    std::vector<float> mean, stddev;
    std::vector<EpochRecord> history;
    int64_t start_epoch = 0, start_batch = 0;
    io::SafeTensors resumed;
    if (!c.resume.empty()) {
        resumed = io::load_safetensors(c.resume);
        const auto& meta = resumed.metadata;
        GB_CHECK(meta.count("train.epoch") && models::read_normalization(meta, c.resume, mean, stddev), c.resume,
                 " is not a glassbox resume file (use the resume.safetensors a training run writes)");
        model = std::make_shared<models::Vgg>(models::VggConfig::from_metadata(meta, c.resume));
        GB_CHECK(model->config().name == models::model_config(c.model).name, c.resume, " continues a '", model->config().name,
                 "' run, but --model is '", c.model, "'");
        // The optimizer's tensors share the file under "optimizer."; they are loaded into it below.
        models::load_state(*model, resumed, {"optimizer."});
        start_epoch = parse_int(meta.at("train.epoch"), 0, INT32_MAX, c.resume + ": metadata 'train.epoch'");
        // Files written before mid-epoch saves existed have no train.batch: an epoch end.
        if (meta.count("train.batch"))
            start_batch = parse_int(meta.at("train.batch"), 0, INT32_MAX, c.resume + ": metadata 'train.batch'");
        history = history_from_json(resume_entry(meta, "train.history", c.resume), c.resume);
        GB_CHECK(start_epoch < c.epochs, c.resume, " already finished ", start_epoch, " epochs; ask for more than that (--epochs)");
        log << "resume: " << c.resume
            << (start_batch > 0 ? " at " + moment_text(std::to_string(start_epoch), std::to_string(start_batch))
                                : " after epoch " + std::to_string(start_epoch))
            << "\n";
        // At an epoch end these may change (a mid-epoch resume refuses it below), but the run then
        // no longer matches an uninterrupted one: said, not silent.
        if (start_batch == 0) {
            auto differs = [&](const char* key, const std::string& now, const char* option) {
                auto it = meta.find(key);
                if (it != meta.end() && it->second != now)
                    log << "resume: note: " << option << " " << now << " differs from the run's " << it->second
                        << "; the result will differ from an uninterrupted run\n";
            };
            differs("train.seed", std::to_string(c.seed), "--seed");
            differs("train.batch_size", std::to_string(c.batch_size), "--batch-size");
            differs("train.images", std::to_string(train_set.size()), "the number of training images (--train-limit)");
        }
    } else {
        Generator init(c.seed);
        model = models::make_model(
            c.model, {train_set.channels(), train_set.height(), train_set.classes()}, init);
        // Measured on the (possibly limited) training split; a resume uses the file's, those the weights saw.
        channel_stats(train_set, mean, stddev);
    }
    GB_CHECK(model->config().num_classes == train_set.classes() && model->config().in_channels == train_set.channels() &&
                 model->config().input_size == train_set.height(),
             "train: the model takes ", model->config().in_channels, "x", model->config().input_size, "x",
             model->config().input_size, " images in ", model->config().num_classes, " classes; ", c.data, " has ",
             train_set.channels(), "x", train_set.height(), "x", train_set.width(), " in ", train_set.classes());
    model->to(c.device);
    model->train();
    log << "model: " << model->describe() << ", " << model->num_parameters() << " parameters\n";

    auto opt = make_optimizer(c, model->named_parameters());
    if (!c.resume.empty()) {
        models::NamedTensors state;
        for (const auto& [n, t] : resumed.tensors)
            if (n.rfind("optimizer.", 0) == 0) state.emplace_back(n.substr(10), t);
        opt->load_state(state, resumed.metadata);
        // The default generator drives dropout, and is the only random state to restore: the loader's draws are
        // functions of (seed, epoch, sample).
        auto rng = [&](const char* key) {
            return parse_uint(resume_entry(resumed.metadata, key, c.resume), c.resume + ": metadata '" + key + "'");
        };
        default_generator().set_state(rng("rng.seed"), rng("rng.offset"));
    } else {
        default_generator().set_state(c.seed, 0);
    }

    LoaderOptions lo;
    lo.batch_size = c.batch_size;
    lo.seed = c.seed;
    lo.mean = mean;
    lo.stddev = stddev;
    lo.crop_padding = c.crop_padding;
    lo.hflip = c.hflip;
    DataLoader loader(train_set, lo);

    // A mid-epoch resume continues the epoch's batches and its running sums; that
    // is only the same epoch when the data order and batching are the same.
    double resumed_loss_sum = 0, resumed_seconds = 0;
    int64_t resumed_seen = 0, resumed_correct = 0;
    if (start_batch > 0) {
        const auto& meta = resumed.metadata;
        auto num = [&](const char* key) {
            return parse_int(resume_entry(meta, key, c.resume), 0, INT64_MAX, c.resume + ": metadata '" + key + "'");
        };
        const int64_t batches = num("train.batches"), bs = num("train.batch_size"), images = num("train.images");
        const std::string& seed = resume_entry(meta, "train.seed", c.resume);
        GB_CHECK(bs == c.batch_size && seed == std::to_string(c.seed) && images == train_set.size() &&
                     batches == loader.size(),
                 c.resume, " was saved in the middle of an epoch (", moment_text(std::to_string(start_epoch),
                 std::to_string(start_batch)), ") of a run with --batch-size ", bs, ", --seed ", seed, " and ", images,
                 " training images; continuing that epoch needs the same (this run: --batch-size ", c.batch_size,
                 ", --seed ", c.seed, ", ", train_set.size(), " images)");
        GB_CHECK(start_batch < batches, c.resume, ": metadata 'train.batch' is ", start_batch, ", but an epoch has ",
                 batches, " batches");
        auto real = [&](const char* key) {
            return parse_exact(resume_entry(meta, key, c.resume), c.resume + ": metadata '" + key + "'");
        };
        resumed_loss_sum = real("train.loss_sum");
        resumed_seen = num("train.seen");
        resumed_correct = num("train.correct");
        resumed_seconds = real("train.seconds");
        GB_CHECK(resumed_correct <= resumed_seen && resumed_seen == start_batch * c.batch_size, c.resume,
                 ": metadata 'train.seen' / 'train.correct' (", resumed_seen, " / ", resumed_correct,
                 ") do not match ", start_batch, " batches of ", c.batch_size);
    }

    std::error_code dir_error;
    fs::create_directories(c.out_dir, dir_error);
    GB_CHECK(!dir_error, "train: cannot create the output folder '", c.out_dir, "': ", dir_error.message());
    TrainResult result;
    result.model_path = c.out_dir + "/model.safetensors";
    result.resume_path = c.out_dir + "/resume.safetensors";
    result.metrics_csv = c.out_dir + "/metrics.csv";
    result.metrics_json = c.out_dir + "/metrics.json";
    json classes = train_set.class_names;
    const bool tty = Progress::is_terminal(log);
    auto files_now = [&] { return current_files(result.model_path, result.resume_path); };

    // A write that fails stops the run with what is current on disk: the files
    // are written in an order (model, metrics, resume last) that keeps the pair
    // resumable whatever write fails.
    auto write_or_explain = [&](const std::string& path, const std::function<void()>& write) {
        try {
            write();
        } catch (const std::exception& e) {
            GB_FAIL("writing ", path, " failed (", e.what(), "); ", files_now(), ".");
        }
    };
    // Nothing non-finite is ever saved: checked before every save.
    auto check_finite = [&](const std::string& when, double lr) {
        std::string bad = first_non_finite(model->state());
        if (bad.empty()) {
            bad = first_non_finite(opt->state());
            if (!bad.empty()) bad = "the optimizer state '" + bad + "'";
        } else {
            bad = "the model's '" + bad + "'";
        }
        GB_CHECK(bad.empty(), "training stopped: ", bad, " became NaN or infinite ", when, " (learning rate ", lr,
                 "); nothing of that moment was saved. The last good checkpoints: ", files_now(),
                 ". Try a lower --lr.");
    };

    // Metadata both files share: what the weights are and which moment they are from. test_accuracy is the last
    // finished epoch's (at a mid-epoch save, the epoch before the one in progress).
    auto base_metadata = [&](int64_t epochs_done) {
        std::map<std::string, std::string> meta = models::normalization_metadata(mean, stddev);
        meta["dataset"] = c.data;
        meta["classes"] = classes.dump();
        meta["train.epoch"] = std::to_string(epochs_done);
        meta["train.steps"] = std::to_string(opt->steps());
        if (!history.empty()) meta["test_accuracy"] = fmt(history.back().test_acc, 6);
        return meta;
    };
    struct EpochSums {
        double loss_sum = 0, seconds = 0;
        int64_t seen = 0, correct = 0;
    };
    // resume.safetensors: the model, the optimizer, the RNG and the progress of
    // one moment (after `batch` batches of epoch epochs_done + 1; 0 = an epoch end).
    auto save_resume = [&](int64_t epochs_done, int64_t batch, const EpochSums& sums) {
        std::map<std::string, std::string> rmeta = base_metadata(epochs_done);
        for (const auto& [k, v] : opt->state_metadata()) rmeta[k] = v;
        rmeta["rng.seed"] = std::to_string(default_generator().seed());
        rmeta["rng.offset"] = std::to_string(default_generator().offset());
        rmeta["train.history"] = history_json(history).dump();
        rmeta["train.batch"] = std::to_string(batch);
        rmeta["train.batches"] = std::to_string(loader.size());
        rmeta["train.batch_size"] = std::to_string(c.batch_size);
        rmeta["train.seed"] = std::to_string(c.seed);
        rmeta["train.images"] = std::to_string(train_set.size());
        // An epoch end has no running sums: the next epoch starts from zero.
        if (batch > 0) {
            rmeta["train.loss_sum"] = exact(sums.loss_sum);
            rmeta["train.seen"] = std::to_string(sums.seen);
            rmeta["train.correct"] = std::to_string(sums.correct);
            rmeta["train.seconds"] = exact(sums.seconds);
        }
        models::NamedTensors extra;
        for (const auto& [n, t] : opt->state()) extra.emplace_back("optimizer." + n, t);
        write_or_explain(result.resume_path,
                         [&] { models::save_checkpoint(result.resume_path, *model, rmeta, extra); });
    };

    // --stop-after counts the epochs of this call, from where a resume starts.
    const int64_t end_epoch = c.stop_after > 0 ? std::min(c.epochs, start_epoch + c.stop_after) : c.epochs;
    for (int64_t epoch = start_epoch; epoch < end_epoch; ++epoch) {
        loader.set_epoch(epoch);
        model->train();
        const int64_t first = epoch == start_epoch ? start_batch : 0;
        Progress bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(c.epochs), loader.size(), log, tty);
        const auto t0 = std::chrono::steady_clock::now();
        EpochSums sums;
        if (first > 0) sums = {resumed_loss_sum, resumed_seconds, resumed_seen, resumed_correct};
        double lr = 0;
        for (int64_t b = first; b < loader.size(); ++b) {
            // Per iteration, a function of (epoch, batch) alone: a resumed epoch gets the same rates.
            lr = sched.lr_at(static_cast<double>(epoch) + static_cast<double>(b) / static_cast<double>(loader.size()));
            opt->set_lr(static_cast<float>(lr));
            Batch batch = loader.batch(b);
            const Tensor x = batch.images.to(c.device), y = batch.labels.to(c.device);
            const Tensor logits = (*model)(x);
            const Tensor loss = cross_entropy(logits, y);
            const float lv = loss.item();
            // Before the step: a non-finite loss never reaches the weights. The bar is ended first so that the
            // error starts on a line of its own.
            if (!std::isfinite(lv)) {
                bar.finish();
                GB_FAIL("training stopped: the loss became ", lv, " at epoch ", epoch + 1, ", batch ", b + 1,
                        " (learning rate ", lr, "). The last good checkpoints: ", files_now(), ". Try a lower --lr.");
            }
            opt->zero_grad();
            autograd::backward(loss);
            opt->step();
            if (c.after_step) c.after_step(*model, epoch, b);
            const int64_t n = batch.labels.numel();
            sums.loss_sum += static_cast<double>(lv) * static_cast<double>(n);
            const auto pred = predictions(logits);
            const auto lab = batch.labels.to_vector<int32_t>();
            for (size_t i = 0; i < lab.size(); ++i) sums.correct += pred[i] == lab[i];
            sums.seen += n;
            const double seen = static_cast<double>(sums.seen);
            bar.update(b + 1, sums.seen,
                       {{"loss", fmt(sums.loss_sum / seen, 4)},
                        {"acc", fmt(100.0 * static_cast<double>(sums.correct) / seen, 2) + "%"},
                        {"lr", fmt(lr, 5)}});
            const int64_t done = b + 1;
            // Not after the epoch's last batch: the epoch end saves, after the test pass. The check comes after
            // after_step, so a step made non-finite there is never saved.
            if (c.save_every > 0 && done % c.save_every == 0 && done < loader.size()) {
                check_finite("at epoch " + std::to_string(epoch + 1) + ", batch " + std::to_string(done), lr);
                // The file records the epoch's time so far, so that a resumed epoch's seconds add up.
                EpochSums now = sums;
                now.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                save_resume(epoch, done, now);
            }
        }
        // sums.seconds: the time a resumed epoch had taken before this process (0 otherwise).
        const double train_seconds = sums.seconds + bar.finish();
        check_finite("at the end of epoch " + std::to_string(epoch + 1) + " (batch " + std::to_string(loader.size()) +
                         ", its last)", lr);
        const EvalResult ev = evaluate(*model, test_set, lo, c.device, &log);
        GB_CHECK(std::isfinite(ev.loss), "training stopped: the test loss became ", ev.loss, " after epoch ", epoch + 1,
                 " (learning rate ", lr, "); the model diverged and was not saved. The last good checkpoints: ",
                 files_now(), ". Try a lower --lr.");

        EpochRecord r;
        r.epoch = epoch + 1;
        r.lr = lr;
        r.train_loss = sums.loss_sum / static_cast<double>(sums.seen);
        r.train_acc = static_cast<double>(sums.correct) / static_cast<double>(sums.seen);
        r.test_loss = ev.loss;
        r.test_acc = ev.confusion.accuracy();
        r.seconds = train_seconds;
        r.images_per_s = static_cast<double>(sums.seen) / std::max(1e-9, train_seconds);
        history.push_back(r);
        log << "epoch " << r.epoch << ": train loss " << fmt(r.train_loss, 4) << ", train acc "
            << fmt(100 * r.train_acc, 2) << "%, test loss " << fmt(r.test_loss, 4) << ", test acc "
            << fmt(100 * r.test_acc, 2) << "%, " << fmt(r.images_per_s, 0) << " img/s, "
            << Progress::format_duration(train_seconds) << "\n";

        // Write order: model, metrics, then resume last. resume.safetensors is the
        // commit record of the epoch: while it still names an earlier moment,
        // resuming from it recomputes this epoch bit for bit and rewrites the rest.
        const auto meta = base_metadata(epoch + 1);
        write_or_explain(result.model_path, [&] { models::save_checkpoint(result.model_path, *model, meta); });
        write_or_explain(result.metrics_csv, [&] {
            io::write_file_atomic(result.metrics_csv, [&](std::ostream& o) { o << metrics_csv(history); });
        });
        write_or_explain(result.metrics_json, [&] {
            io::write_file_atomic(result.metrics_json, [&](std::ostream& o) { o << metrics_json(history); });
        });
        save_resume(epoch + 1, 0, {});
    }
    result.history = history;
    log << "checkpoint: " << result.model_path << "\n";
    return result;
}

}  // namespace gb::train
