// The Trainer (a training run step by step) and the test pass (evaluate). The algorithm and its invariants are in
// trainer.h; why the files are written in this order is in docs/training.md ("Durable runs").
//
// Where each step lives:
//   - Trainer(): the configuration's checks, the splits (cut to --train-limit / --test-limit), the files' paths.
//   - start() / resume(): the model (new, or the file's config, weights, normalisation, history and moment); both
//     end in begin(): model/data fit, device, optimizer, default generator, loader. resume() then loads the
//     optimizer state and the generator's (seed, offset), and mid-epoch (restore_epoch_sums) the epoch's running
//     sums, after checking that the batch size, seed and image count, hence its batches, are the same.
//   - train_epoch(): per batch train_batch() (learning rate from the schedule at the fractional epoch, forward,
//     cross-entropy, finite-loss check, backward, step, after_step, on_batch), every --save-every batches check_finite +
//     save_resume; at the end check_finite.
//   - record_epoch() / save_checkpoint(): the finite test loss, the EpochRecord and the log line; check_finite, then
//     model.safetensors, metrics.csv, metrics.json and resume.safetensors, in that order.
// Every error that stops a run says which checkpoints are current, read back from the files themselves
// (current_files, run_files.h), and a failed write says so too (write_or_explain). Bit-for-bit resumption needs
// every input of the computation in the file, exactly: the weights, the optimizer state, the default generator's
// offset, and the epoch's running sums as hex floats (exact(), not decimals).
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <nlohmann/json.hpp>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "core/parse.h"
#include "core/rng.h"
#include "io/file_util.h"
#include "models/checkpoint.h"
#include "models/registry.h"
#include "layers/batchnorm.h"
#include "train/data_parallel.h"
#include "train/optimizer.h"
#include "train/progress.h"
#include "train/run_files.h"

namespace gb::train {

using namespace detail;  // run_files.h
using json = nlohmann::json;

namespace {
// Where the ranks other than 0 log: nowhere (an ostream without a buffer drops what it is given).
std::ostream& null_stream() {
    static std::ostream none(nullptr);
    return none;
}
}  // namespace

Trainer::Trainer(TrainConfig config, std::ostream& log)
    : c_(std::move(config)), comm_(c_.comm ? *c_.comm : dist::world()), log_(comm_.is_root() ? log : null_stream()) {
    GB_CHECK(c_.epochs > 0, "train: --epochs must be at least 1, got ", c_.epochs);
    GB_CHECK(c_.batch_size > 0, "train: --batch-size must be positive, got ", c_.batch_size);
    GB_CHECK(c_.save_every >= 0, "train: --save-every must be >= 0, got ", c_.save_every);
    sched_ = c_.schedule;
    sched_.base_lr = c_.lr;
    sched_.total_epochs = c_.epochs;
    sched_.validate();

    // head() is a view of the loaded split, which it keeps alive.
    train_set_ = io::load_dataset(c_.data, io::Split::Train, c_.data_dir).head(c_.train_limit);
    test_set_ = io::load_dataset(c_.data, io::Split::Test, c_.data_dir).head(c_.test_limit);
    GB_CHECK(train_set_.height() == train_set_.width(), "train: images are ", train_set_.height(), "x",
             train_set_.width(), "; the VGG models take square images");
    log_ << "data: " << c_.data << ": " << train_set_.size() << " training and " << test_set_.size()
         << " test images of " << train_set_.channels() << "x" << train_set_.height() << "x" << train_set_.width()
         << ", " << train_set_.classes() << " classes\n";
    if (comm_.size() > 1)
        log_ << "data-parallel: " << comm_.size() << " ranks, each a shard of every batch of " << c_.batch_size
             << " (" << dist::shard_of(c_.batch_size, comm_.size() - 1, comm_.size()).count << "-"
             << dist::shard_of(c_.batch_size, 0, comm_.size()).count << " images)\n";
    model_path_ = c_.out_dir + "/model.safetensors";
    resume_path_ = c_.out_dir + "/resume.safetensors";
    metrics_csv_path_ = c_.out_dir + "/metrics.csv";
    metrics_json_path_ = c_.out_dir + "/metrics.json";
}

Trainer::~Trainer() = default;

void Trainer::start() {
    GB_CHECK(!started(), "train: the run has already started");
    Generator init(c_.seed);
    model_ = models::make_model(c_.model, {train_set_.channels(), train_set_.height(), train_set_.classes()}, init);
    // Measured on the (possibly limited) training split; a resume uses the file's, those the weights saw.
    channel_stats(train_set_, mean_, stddev_);
    begin("");
    check_ranks_agree("the initial model (--seed " + std::to_string(c_.seed) + ")");
}

void Trainer::start_from(std::shared_ptr<models::Vgg> model, std::vector<float> mean, std::vector<float> stddev) {
    GB_CHECK(!started(), "train: the run has already started");
    GB_CHECK(model != nullptr, "train: start_from needs a model");
    const int64_t c = model->config().in_channels;
    GB_CHECK(static_cast<int64_t>(mean.size()) == c && static_cast<int64_t>(stddev.size()) == c, "train: start_from: ",
             mean.size(), " means and ", stddev.size(), " standard deviations for ", c, " input channels");
    model_ = std::move(model);
    mean_ = std::move(mean);
    stddev_ = std::move(stddev);
    begin("");
    check_ranks_agree("the starting model");
}

void Trainer::resume(const std::string& path) {
    GB_CHECK(!started(), "train: the run has already started; resume ", path, " with a new Trainer");
    const io::SafeTensors resumed = io::load_safetensors(path);
    const auto& meta = resumed.metadata;
    GB_CHECK(meta.count("train.epoch") && models::read_normalization(meta, path, mean_, stddev_), path,
             " is not a glassbox resume file (use the resume.safetensors a training run writes)");
    auto model = std::make_shared<models::Vgg>(models::VggConfig::from_metadata(meta, path));
    GB_CHECK(model->config().name == models::model_config(c_.model).name, path, " continues a '",
             model->config().name, "' run, but --model is '", c_.model, "'");
    // The optimizer's tensors share the file under "optimizer."; they are loaded into it in begin().
    models::load_state(*model, resumed, {"optimizer."});
    const int64_t epoch = parse_int(meta.at("train.epoch"), 0, INT32_MAX, path + ": metadata 'train.epoch'");
    // Files written before mid-epoch saves existed have no train.batch: an epoch end.
    const int64_t batch =
        meta.count("train.batch") ? parse_int(meta.at("train.batch"), 0, INT32_MAX, path + ": metadata 'train.batch'")
                                  : 0;
    std::vector<EpochRecord> history = history_from_json(resume_entry(meta, "train.history", path), path);
    GB_CHECK(epoch < c_.epochs, path, " already finished ", epoch, " epochs; ask for more than that (--epochs)");
    log_ << "resume: " << path
         << (batch > 0 ? " at " + moment_text(std::to_string(epoch), std::to_string(batch))
                       : " after epoch " + std::to_string(epoch))
         << "\n";
    // At an epoch end these may change (a mid-epoch resume refuses it, restore_epoch_sums), but the run then
    // no longer matches an uninterrupted one: said, not silent.
    if (batch == 0) {
        auto differs = [&](const char* key, const std::string& now, const char* option) {
            auto it = meta.find(key);
            if (it != meta.end() && it->second != now)
                log_ << "resume: note: " << option << " " << now << " differs from the run's " << it->second
                     << "; the result will differ from an uninterrupted run\n";
        };
        differs("train.seed", std::to_string(c_.seed), "--seed");
        differs("train.batch_size", std::to_string(c_.batch_size), "--batch-size");
        differs("train.images", std::to_string(train_set_.size()), "the number of training images (--train-limit)");
    }
    model_ = std::move(model);
    epoch_ = epoch;
    batch_ = batch;
    history_ = std::move(history);
    c_.resume = path;  // the name the mid-epoch checks below (and their errors) use
    try {
        begin(path);
        models::NamedTensors state;
        for (const auto& [n, t] : resumed.tensors)
            if (n.rfind("optimizer.", 0) == 0) state.emplace_back(n.substr(10), t);
        opt_->load_state(state, meta);
        // The default generator drives dropout, and is the only random state to restore: the loader's draws are
        // functions of (seed, epoch, sample).
        auto rng = [&](const char* key) {
            return parse_uint(resume_entry(meta, key, path), path + ": metadata '" + key + "'");
        };
        default_generator().set_state(rng("rng.seed"), rng("rng.offset"));
        if (batch_ > 0) restore_epoch_sums(meta);
        check_ranks_agree("the model, optimizer state and generator loaded from " + path);
    } catch (...) {
        spent_ = true;  // half restored: no later call may train or save from it
        throw;
    }
}

// After start() or resume() made the model: it must fit the data; then the optimizer and the loader. A new run
// (`from` empty) seeds the default generator here; resume() restores it after loading the optimizer's state.
void Trainer::begin(const std::string& from) {
    const models::VggConfig& cfg = model_->config();
    GB_CHECK(cfg.num_classes == train_set_.classes() && cfg.in_channels == train_set_.channels() &&
                 cfg.input_size == train_set_.height(),
             "train: the model takes ", cfg.in_channels, "x", cfg.input_size, "x", cfg.input_size, " images in ",
             cfg.num_classes, " classes; ", c_.data, " has ", train_set_.channels(), "x", train_set_.height(), "x",
             train_set_.width(), " in ", train_set_.classes());
    model_->to(c_.device);
    model_->train();
    log_ << "model: " << model_->describe() << ", " << model_->num_parameters() << " parameters\n";
    opt_ = make_optimizer(c_, model_->named_parameters());
    if (comm_.size() > 1) sync_ = std::make_unique<GradientSync>(comm_, model_->named_parameters());
    if (c_.sync_batchnorm && comm_.size() > 1) {
        // Every rank meets the others in every BatchNorm layer, so every batch must give each one a row.
        const int64_t last = train_set_.size() % c_.batch_size;
        GB_CHECK(c_.batch_size >= comm_.size() && (last == 0 || last >= comm_.size()),
                 "train: --sync-batchnorm on ", comm_.size(), " ranks needs at least ", comm_.size(),
                 " images in every batch, but ", c_.batch_size < comm_.size() ? "--batch-size is " : "the last batch has ",
                 c_.batch_size < comm_.size() ? c_.batch_size : last, " (", train_set_.size(),
                 " training images); change --batch-size or --train-limit");
    }
    if (from.empty()) default_generator().set_state(c_.seed, 0);
    loader_options_.batch_size = c_.batch_size;
    loader_options_.seed = c_.seed;
    loader_options_.mean = mean_;
    loader_options_.stddev = stddev_;
    loader_options_.crop_padding = c_.crop_padding;
    loader_options_.hflip = c_.hflip;
    loader_ = std::make_unique<DataLoader>(train_set_, loader_options_);
}

// A mid-epoch resume continues the epoch's batches and its running sums; that is only the same epoch when the
// data order and batching are the same.
void Trainer::restore_epoch_sums(const std::map<std::string, std::string>& meta) {
    const std::string& path = c_.resume;
    auto num = [&](const char* key) {
        return parse_int(resume_entry(meta, key, path), 0, INT64_MAX, path + ": metadata '" + key + "'");
    };
    const int64_t batches = num("train.batches"), bs = num("train.batch_size"), images = num("train.images");
    const std::string& seed = resume_entry(meta, "train.seed", path);
    GB_CHECK(bs == c_.batch_size && seed == std::to_string(c_.seed) && images == train_set_.size() &&
                 batches == loader_->size(),
             path, " was saved in the middle of an epoch (", moment_text(std::to_string(epoch_), std::to_string(batch_)),
             ") of a run with --batch-size ", bs, ", --seed ", seed, " and ", images,
             " training images; continuing that epoch needs the same (this run: --batch-size ", c_.batch_size,
             ", --seed ", c_.seed, ", ", train_set_.size(), " images)");
    GB_CHECK(batch_ < batches, path, ": metadata 'train.batch' is ", batch_, ", but an epoch has ", batches,
             " batches");
    auto real = [&](const char* key) {
        return parse_exact(resume_entry(meta, key, path), path + ": metadata '" + key + "'");
    };
    EpochSums& s = resumed_sums_;
    s.loss_sum = real("train.loss_sum");
    s.seen = num("train.seen");
    s.correct = num("train.correct");
    s.seconds = real("train.seconds");
    GB_CHECK(s.correct <= s.seen && s.seen == batch_ * c_.batch_size, path, ": metadata 'train.seen' / 'train.correct' (",
             s.seen, " / ", s.correct, ") do not match ", batch_, " batches of ", c_.batch_size);
}

void Trainer::require_ready(const char* what) const {
    GB_CHECK(started(), "train: ", what, " before start() or resume()");
    GB_CHECK(!spent_, "train: ", what, " after a failed step; the files on disk are the last good ones (",
             files_now(), ")");
}

models::Vgg& Trainer::model() {
    GB_CHECK(started(), "train: no model before start() or resume()");
    return *model_;
}

Optimizer& Trainer::optimizer() {
    GB_CHECK(started(), "train: no optimizer before start() or resume()");
    return *opt_;
}

TrainResult Trainer::result() const {
    return {history_, model_path_, resume_path_, metrics_csv_path_, metrics_json_path_};
}

// The ranks hold the same model, optimizer state and generator (one process: nothing to compare).
void Trainer::check_ranks_agree(const std::string& when) const {
    if (comm_.size() == 1) return;
    NamedTensors all = model_->state();
    for (const auto& [n, t] : opt_->state()) all.emplace_back("optimizer." + n, t);
    check_same_on_all_ranks(comm_, all, when);
    const std::vector<std::string> counters =
        comm_.allgather(std::to_string(opt_->steps()) + " steps, generator " +
                        std::to_string(default_generator().seed()) + "/" + std::to_string(default_generator().offset()));
    for (size_t r = 1; r < counters.size(); ++r)
        GB_CHECK(counters[r] == counters[0], when, ": rank ", r, " has ", counters[r], ", rank 0 ", counters[0]);
}

std::string Trainer::files_now() const { return current_files(model_path_, resume_path_); }

// A write that fails stops the run with what is current on disk: the files are written in an order (model,
// metrics, resume last) that keeps the pair resumable whatever write fails.
void Trainer::write_or_explain(const std::string& path, const std::function<void()>& write) const {
    try {
        write();
    } catch (const std::exception& e) {
        GB_FAIL("writing ", path, " failed (", e.what(), "); ", files_now(), ".");
    }
}

// Nothing non-finite is ever saved: checked before every save.
void Trainer::check_finite(const std::string& when, double lr) const {
    std::string bad = first_non_finite(model_->state());
    if (bad.empty()) {
        bad = first_non_finite(opt_->state());
        if (!bad.empty()) bad = "the optimizer state '" + bad + "'";
    } else {
        bad = "the model's '" + bad + "'";
    }
    GB_CHECK(bad.empty(), "training stopped: ", bad, " became NaN or infinite ", when, " (learning rate ", lr,
             "); nothing of that moment was saved. The last good checkpoints: ", files_now(), ". Try a lower --lr.");
}

// Metadata both files share: what the weights are and which moment they are from. test_accuracy is the last
// finished epoch's (at a mid-epoch save, the epoch before the one in progress).
std::map<std::string, std::string> Trainer::base_metadata(int64_t epochs_done) const {
    std::map<std::string, std::string> meta = models::normalization_metadata(mean_, stddev_);
    meta["dataset"] = c_.data;
    meta["classes"] = json(train_set_.class_names).dump();
    meta["train.epoch"] = std::to_string(epochs_done);
    meta["train.steps"] = std::to_string(opt_->steps());
    if (!history_.empty()) meta["test_accuracy"] = fmt(history_.back().test_acc, 6);
    return meta;
}

// resume.safetensors: the model, the optimizer, the RNG and the progress of one moment (after `batch` batches of
// epoch epochs_done + 1; 0 = an epoch end).
void Trainer::save_resume(int64_t epochs_done, int64_t batch, const EpochSums& sums) {
    if (!comm_.is_root()) return;  // rank 0 alone writes
    std::map<std::string, std::string> rmeta = base_metadata(epochs_done);
    for (const auto& [k, v] : opt_->state_metadata()) rmeta[k] = v;
    rmeta["rng.seed"] = std::to_string(default_generator().seed());
    rmeta["rng.offset"] = std::to_string(default_generator().offset());
    rmeta["train.history"] = history_json(history_).dump();
    rmeta["train.batch"] = std::to_string(batch);
    rmeta["train.batches"] = std::to_string(loader_->size());
    rmeta["train.batch_size"] = std::to_string(c_.batch_size);
    rmeta["train.seed"] = std::to_string(c_.seed);
    rmeta["train.images"] = std::to_string(train_set_.size());
    // An epoch end has no running sums: the next epoch starts from zero.
    if (batch > 0) {
        rmeta["train.loss_sum"] = exact(sums.loss_sum);
        rmeta["train.seen"] = std::to_string(sums.seen);
        rmeta["train.correct"] = std::to_string(sums.correct);
        rmeta["train.seconds"] = exact(sums.seconds);
    }
    models::NamedTensors extra;
    for (const auto& [n, t] : opt_->state()) extra.emplace_back("optimizer." + n, t);
    write_or_explain(resume_path_, [&] { models::save_checkpoint(resume_path_, *model_, rmeta, extra); });
}

// One optimizer step on batch b of the current epoch, its loss and hits added to `sums`. Data-parallel: this
// rank's rows of the batch, the gradients averaged and the loss and hits summed over the ranks.
void Trainer::train_batch(int64_t b, double lr, EpochSums& sums, Progress& bar) {
    opt_->set_lr(static_cast<float>(lr));
    const int64_t total = std::min(c_.batch_size, train_set_.size() - b * c_.batch_size);
    const dist::Shard rows = dist::shard_of(total, comm_.rank(), comm_.size());
    const Batch batch = loader_->batch(b, rows.first, rows.count);  // this rank's rows only
    Tensor loss;
    double stats[2] = {0, 0};  // this rank's loss sum and hits, then the ranks' sums
    if (rows.count > 0) {
        const BatchRows window(rows.first, rows.count, total);  // dropout draws per row of the whole batch
        std::optional<layers::SyncBatchStats> batch_stats;  // BatchNorm over every rank's rows
        if (c_.sync_batchnorm && comm_.size() > 1) batch_stats.emplace(comm_, rows.count, total);
        const Tensor x = batch.images.to(c_.device);
        const Tensor& labels = batch.labels;
        const Tensor logits = (*model_)(x);
        loss = cross_entropy(logits, labels.to(c_.device));
        stats[0] = static_cast<double>(loss.item()) * static_cast<double>(rows.count);
        const auto pred = predictions(logits);
        const auto lab = labels.to_vector<int32_t>();
        for (size_t i = 0; i < lab.size(); ++i) stats[1] += pred[i] == lab[i];
    }
    if (comm_.size() > 1) {
        comm_.allreduce_sum(stats, 2);
        // A rank without rows drew nothing; the others drew the whole batch's block.
        uint64_t offset = default_generator().offset();
        comm_.allreduce_max(&offset, 1);
        default_generator().set_state(default_generator().seed(), offset);
    }
    const double lv = stats[0] / static_cast<double>(total);
    // Before the step: a non-finite loss never reaches the weights (every rank sees the same sum, so all stop).
    // The bar is ended first so that the error starts on a line of its own.
    if (!std::isfinite(lv)) {
        bar.finish();
        GB_FAIL("training stopped: the loss became ", lv, " at epoch ", epoch_ + 1, ", batch ", b + 1,
                " (learning rate ", lr, "). The last good checkpoints: ", files_now(), ". Try a lower --lr.");
    }
    opt_->zero_grad();
    if (sync_) sync_->begin(rows.count, total);
    if (loss.defined()) {
        if (sync_)
            autograd::backward(loss, Tensor(), false, [this](TensorImpl& leaf) { sync_->ready(leaf); });
        else
            autograd::backward(loss);
    }
    if (sync_) sync_->finish();
    opt_->step();
    if (c_.after_step) c_.after_step(*model_, epoch_, b);
    sums.loss_sum += stats[0];
    sums.correct += static_cast<int64_t>(stats[1]);
    sums.seen += total;
    const double seen = static_cast<double>(sums.seen);
    bar.update(b + 1, sums.seen,
               {{"loss", fmt(sums.loss_sum / seen, 4)},
                {"acc", fmt(100.0 * static_cast<double>(sums.correct) / seen, 2) + "%"},
                {"lr", fmt(lr, 5)}});
    if (c_.on_batch)
        c_.on_batch({.epoch = epoch_ + 1, .epochs = c_.epochs, .batch = b + 1, .batches = loader_->size(),
                     .seen = sums.seen, .loss = sums.loss_sum / seen, .accuracy = static_cast<double>(sums.correct) / seen,
                     .lr = lr});
}

EpochRecord Trainer::train_epoch() {
    require_ready("train_epoch");
    GB_CHECK(epoch_ < c_.epochs, "train: all ", c_.epochs, " epochs are done");
    try {
        const int64_t batches = loader_->size();
        loader_->set_epoch(epoch_);
        model_->train();
        Progress bar("epoch " + std::to_string(epoch_ + 1) + "/" + std::to_string(c_.epochs), batches, log_,
                     Progress::is_terminal(log_));
        const auto t0 = std::chrono::steady_clock::now();
        EpochSums sums;
        if (batch_ > 0) sums = resumed_sums_;
        double lr = 0;
        for (int64_t b = batch_; b < batches; ++b) {
            // Per iteration, a function of (epoch, batch) alone: a resumed epoch gets the same rates.
            lr = sched_.lr_at(static_cast<double>(epoch_) + static_cast<double>(b) / static_cast<double>(batches));
            train_batch(b, lr, sums, bar);
            const int64_t done = b + 1;
            // Not after the epoch's last batch: the epoch end saves, after the test pass. The check comes after
            // after_step, so a step made non-finite there is never saved.
            if (c_.save_every > 0 && done % c_.save_every == 0 && done < batches) {
                check_finite("at epoch " + std::to_string(epoch_ + 1) + ", batch " + std::to_string(done), lr);
                // The file records the epoch's time so far, so that a resumed epoch's seconds add up.
                EpochSums now = sums;
                now.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                save_resume(epoch_, done, now);
            }
        }
        // sums.seconds: the time a resumed epoch had taken before this process (0 otherwise).
        const double seconds = sums.seconds + bar.finish();
        average_buffers(comm_, *model_);  // each rank's BatchNorm statistics saw its own rows
        check_finite("at the end of epoch " + std::to_string(epoch_ + 1) + " (batch " + std::to_string(batches) +
                         ", its last)", lr);
        check_ranks_agree("the model and optimizer state after epoch " + std::to_string(epoch_ + 1));
        EpochRecord r;
        r.epoch = epoch_ + 1;
        r.lr = lr;
        r.train_loss = sums.loss_sum / static_cast<double>(sums.seen);
        r.train_acc = static_cast<double>(sums.correct) / static_cast<double>(sums.seen);
        r.seconds = seconds;
        r.images_per_s = static_cast<double>(sums.seen) / std::max(1e-9, seconds);
        ++epoch_;
        batch_ = 0;
        return r;
    } catch (...) {
        spent_ = true;
        throw;
    }
}

EvalResult Trainer::evaluate() {
    require_ready("evaluate");
    return train::evaluate(*model_, test_set_, loader_options_, c_.device, &log_, &comm_);
}

const EpochRecord& Trainer::record_epoch(EpochRecord trained, const EvalResult& test) {
    require_ready("record_epoch");
    if (!std::isfinite(test.loss)) {
        spent_ = true;
        GB_FAIL("training stopped: the test loss became ", test.loss, " after epoch ", trained.epoch,
                " (learning rate ", trained.lr, "); the model diverged and was not saved. The last good checkpoints: ",
                files_now(), ". Try a lower --lr.");
    }
    trained.test_loss = test.loss;
    trained.test_acc = test.confusion.accuracy();
    history_.push_back(trained);
    const EpochRecord& r = history_.back();
    log_ << "epoch " << r.epoch << ": train loss " << fmt(r.train_loss, 4) << ", train acc "
         << fmt(100 * r.train_acc, 2) << "%, test loss " << fmt(r.test_loss, 4) << ", test acc "
         << fmt(100 * r.test_acc, 2) << "%, " << fmt(r.images_per_s, 0) << " img/s, "
         << Progress::format_duration(r.seconds) << "\n";
    return r;
}

void Trainer::save_checkpoint() {
    require_ready("save_checkpoint");
    GB_CHECK(batch_ == 0, "train: save_checkpoint in the middle of epoch ", epoch_ + 1, " (", batch_,
             " batches done); finish it with train_epoch first");
    const double lr = history_.empty() ? static_cast<double>(c_.lr) : history_.back().lr;
    try {
        // Also here, not only at train_epoch's end: weights changed since (by the caller) must not become the
        // last good checkpoint either.
        check_finite("before the checkpoint of epoch " + std::to_string(epoch_), lr);
        if (!comm_.is_root()) return;  // rank 0 alone writes
        std::error_code dir_error;
        std::filesystem::create_directories(c_.out_dir, dir_error);
        GB_CHECK(!dir_error, "train: cannot create the output folder '", c_.out_dir, "': ", dir_error.message());
        // Write order: model, metrics, then resume last. resume.safetensors is the commit record of the epoch:
        // while it still names an earlier moment, resuming from it recomputes this epoch bit for bit and rewrites
        // the rest.
        const auto meta = base_metadata(epoch_);
        write_or_explain(model_path_, [&] { models::save_checkpoint(model_path_, *model_, meta); });
        write_or_explain(metrics_csv_path_, [&] {
            io::write_file_atomic(metrics_csv_path_, [&](std::ostream& o) { o << metrics_csv(history_); });
        });
        write_or_explain(metrics_json_path_, [&] {
            io::write_file_atomic(metrics_json_path_, [&](std::ostream& o) { o << metrics_json(history_); });
        });
        save_resume(epoch_, 0, {});
    } catch (...) {
        spent_ = true;
        throw;
    }
}

void Trainer::run_epoch() {
    EpochRecord trained = train_epoch();
    const EvalResult test = evaluate();
    record_epoch(trained, test);
    save_checkpoint();
}

TrainResult Trainer::run() {
    if (!started()) {
        if (c_.resume.empty()) start();
        else resume(c_.resume);
    }
    require_ready("run");
    if (comm_.is_root()) {
        std::error_code dir_error;
        std::filesystem::create_directories(c_.out_dir, dir_error);
        GB_CHECK(!dir_error, "train: cannot create the output folder '", c_.out_dir, "': ", dir_error.message());
    }
    // --stop-after counts the epochs of this call, from where a resume starts.
    const int64_t end = c_.stop_after > 0 ? std::min(c_.epochs, epoch_ + c_.stop_after) : c_.epochs;
    while (epoch_ < end) run_epoch();
    log_ << "checkpoint: " << model_path_ << "\n";
    return result();
}

TrainResult run_training(const TrainConfig& config, std::ostream& log) { return Trainer(config, log).run(); }

}  // namespace gb::train
