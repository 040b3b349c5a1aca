// Training: a Trainer runs epochs of shuffled, normalised (optionally augmented)
// batches, cross-entropy, an optimizer step per batch and a learning-rate
// schedule per iteration; after each epoch an evaluation on the test split,
// a checkpoint (model.safetensors, for eval/explain/PyTorch), the metrics so far
// (metrics.csv, metrics.json) and, last, a resume file (resume.safetensors:
// model + optimizer + RNG + progress, self-sufficient); with save_every also a
// resume file every N batches within an epoch. Every write is atomic and
// durable (io::write_file_atomic). A non-finite loss, weight or optimizer state
// stops training before anything of that moment is saved, and every error
// (also a failed write) says which files are current and from which moment.
// docs/training.md ("Durable runs") explains the write order, and ("From C++")
// how to drive a Trainer step by step.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "../core/device.h"
#include "../core/distributed.h"
#include "../io/dataset.h"
#include "../io/safetensors.h"
#include "../layers/layer.h"
#include "../models/vgg.h"
#include "loader.h"
#include "metrics.h"
#include "optimizer.h"
#include "schedule.h"

namespace gb::train {

// What on_batch sees after each optimizer step: the epoch's running means so far.
struct BatchProgress {
    int64_t epoch = 0, epochs = 0;    // 1-based, and in all
    int64_t batch = 0, batches = 0;   // 1-based within the epoch, and per epoch
    int64_t seen = 0;                 // training images of the epoch so far
    double loss = 0, accuracy = 0;    // mean cross-entropy and accuracy (0..1) of the epoch so far
    double lr = 0;                    // the step's learning rate
};

struct TrainConfig {
    std::string model = "vgg-mini";
    std::string data = "fashion-mnist";
    std::string data_dir;
    int64_t epochs = 3;
    int64_t batch_size = 128;
    std::string optimizer = "sgd";  // sgd | adam | adamw
    float lr = 0.05f;
    float momentum = 0.9f;
    bool nesterov = true;
    float weight_decay = 5e-4f;
    Schedule schedule{.kind = "cosine"};  // kind, warm-up, step size ...; base_lr and total_epochs come from lr/epochs
    uint64_t seed = 0;
    std::string out_dir = "runs/vgg-mini";
    std::string resume;        // a resume.safetensors to continue from
    int64_t stop_after = 0;    // run at most this many epochs in this call, then return (0: up to `epochs`)
    int64_t train_limit = 0;   // use only the first N training images (0 = all)
    int64_t test_limit = 0;    // evaluate on the first N test images (0 = all)
    int64_t crop_padding = 0;
    bool hflip = false;
    int64_t save_every = 0;  // also write resume.safetensors every N batches within an epoch (0: at epoch ends only)
    Device device = Device::cpu();
    // The ranks that train together, data-parallel (train/data_parallel.h); null: dist::world(), every process
    // of the job (one without MPI). batch_size stays the global batch.
    const dist::Comm* comm = nullptr;
    // Data-parallel: BatchNorm normalises with the statistics of the whole global batch (layers::SyncBatchStats)
    // instead of each rank's rows. Needs every batch to give every rank at least one row.
    bool sync_batchnorm = false;
    // Called after each optimizer step (0-based epoch and batch), before the step's
    // checks and saves: instrumentation, and tests that need a given step to go wrong.
    std::function<void(layers::Layer& model, int64_t epoch, int64_t batch)> after_step;
    // Called after each batch with the running loss and accuracy (the numbers the progress bar shows), for
    // callers that show progress their own way (the Python module's gb.train). An exception from it stops
    // training as one from after_step does: the Trainer is spent and the files on disk stay the last good ones.
    std::function<void(const BatchProgress&)> on_batch;
};

struct EpochRecord {
    int64_t epoch = 0;  // 1-based
    double lr = 0, train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0, seconds = 0, images_per_s = 0;
};

struct TrainResult {
    std::vector<EpochRecord> history;
    std::string model_path, resume_path, metrics_csv, metrics_json;
};

struct EvalResult {
    double loss = 0;
    ConfusionMatrix confusion{1};
    double seconds = 0;
};

// The running sums of the epoch in progress (a mid-epoch resume file holds them exactly).
struct EpochSums {
    double loss_sum = 0, seconds = 0;
    int64_t seen = 0, correct = 0;
};

class Progress;
class GradientSync;

// One training run, step by step. The moment of a run is (epochs done, batches of the next epoch done);
// start() begins at (0, 0), resume() at the moment its file records.
//
// Algorithm (run() does all of it; the pieces are public for callers that want their own loop):
//   construct   check the configuration, load the splits (cut to train_limit / test_limit), log them;
//   start()     a new run: the model from config.model with Generator(seed), the normalisation measured on the
//               training split, the optimizer, the default generator (dropout) seeded with (seed, 0);
//   resume(p)   all of that from a resume file instead (weights, normalisation, optimizer state, the default
//               generator's (seed, offset), the history, the moment; mid-epoch also the epoch's running sums,
//               after checking that its batches would be the same);
//   train_epoch()   the rest of the current epoch: per batch the learning rate at the fractional epoch, forward,
//               cross-entropy, a finite-loss check, backward, optimizer step, after_step, and every save_every
//               batches a resume file; at its end the weights and optimizer state must be finite;
//   evaluate()  the test split in eval mode;
//   record_epoch(trained, test)   the test loss must be finite; the EpochRecord joins the history and the log;
//   save_checkpoint()   model.safetensors, metrics.csv, metrics.json, then resume.safetensors, in that order.
// Invariants:
//   - Nothing non-finite is ever saved: the loss is checked at every batch before its step, the model and the
//     optimizer state before every save, the test loss before the epoch is recorded. A refused save writes
//     nothing, so the files on disk stay the last good ones, and its error names the tensor and those files.
//   - resume.safetensors is written last and is the run's commit record: while it names an earlier moment,
//     resuming from it recomputes the later steps bit for bit and rewrites the other files.
//   - Bit for bit: the loader's order and augmentation are functions of (seed, epoch, sample), the learning rate
//     of (epoch, batch), and the file holds every other input exactly (weights, optimizer state, the default
//     generator's offset, the running sums as hex floats), so resuming at any saved moment reproduces the
//     uninterrupted run (at the same thread count).
//   - Data-parallel (config.comm with more than one rank): every rank runs the same Trainer on the same files;
//     each takes its shard (dist::shard_of) of every global batch, the gradients are averaged across ranks (bucketed
//     allreduce started during the backward, GradientSync) and the loss, hits and test counts summed, so every rank
//     holds the same model, optimizer state and history. Dropout draws per global row (BatchRows), so the run
//     is the one-process run up to the rounding of the sums, for any number of ranks; files are P-independent
//     (resume with any P). BatchNorm normalises with each rank's own rows (as PyTorch's DistributedDataParallel
//     does by default; config.sync_batchnorm: with the whole batch's, every rank's rows) and its running
//     statistics are averaged over the ranks at each epoch end. The ranks'
//     model and optimizer state are compared (digests) at the start and after every epoch: a difference is a
//     gb::Error. Rank 0 alone writes files and logs.
//   - A Trainer whose step threw (a non-finite value, a failed write, an exception from after_step) is spent:
//     its state is between moments, so every later call refuses; resume from the files with a new Trainer.
// The Trainer sets the default generator's state (dropout) when it starts or resumes, and uses it while training.
class Trainer {
public:
    Trainer(TrainConfig config, std::ostream& log);
    ~Trainer();
    Trainer(const Trainer&) = delete;
    Trainer& operator=(const Trainer&) = delete;

    void start();
    void resume(const std::string& path);
    // A new run from a model given (fine-tuning, e.g. a pruned model) whose inputs are normalised with
    // mean / stddev (those its weights saw); config.model is not read. The model is trained in place.
    void start_from(std::shared_ptr<models::Vgg> model, std::vector<float> mean, std::vector<float> stddev);

    // Trains the rest of the current epoch and moves the moment to its end. The returned record has the
    // training columns (epoch, lr, train loss/accuracy, seconds, images/s); record_epoch adds the test ones.
    EpochRecord train_epoch();
    EvalResult evaluate();
    const EpochRecord& record_epoch(EpochRecord trained, const EvalResult& test);
    // The end-of-epoch files of the current moment ("last good"); refuses non-finite weights or optimizer
    // state (gb::Error, nothing written) and a moment in the middle of an epoch.
    void save_checkpoint();
    // train_epoch, evaluate, record_epoch, save_checkpoint.
    void run_epoch();
    // start() or resume(config.resume) unless already started, the output folder, then run_epoch until `epochs`
    // are done (at most stop_after in this call); returns the history and the files' paths.
    TrainResult run();

    bool started() const { return model_ != nullptr; }
    int64_t epochs_done() const { return epoch_; }
    int64_t batches_done() const { return batch_; }  // of the next epoch (after a mid-epoch resume)
    models::Vgg& model();
    Optimizer& optimizer();
    const std::vector<EpochRecord>& history() const { return history_; }
    TrainResult result() const;  // the history and the paths of the files (written or not)
    const TrainConfig& config() const { return c_; }

private:
    void begin(const std::string& from);  // what start() and resume() share once the model exists
    void restore_epoch_sums(const std::map<std::string, std::string>& meta);
    void require_ready(const char* what) const;
    void check_finite(const std::string& when, double lr) const;
    std::string files_now() const;
    void write_or_explain(const std::string& path, const std::function<void()>& write) const;
    std::map<std::string, std::string> base_metadata(int64_t epochs_done) const;
    void save_resume(int64_t epochs_done, int64_t batch, const EpochSums& sums);
    void train_batch(int64_t b, double lr, EpochSums& sums, Progress& bar);

    void check_ranks_agree(const std::string& when) const;

    TrainConfig c_;
    const dist::Comm& comm_;
    std::ostream& log_;  // the caller's on rank 0, a null stream on the others
    std::unique_ptr<GradientSync> sync_;  // with more than one rank
    Schedule sched_;
    io::Dataset train_set_, test_set_;
    std::string model_path_, resume_path_, metrics_csv_path_, metrics_json_path_;
    std::shared_ptr<models::Vgg> model_;
    std::vector<float> mean_, stddev_;
    std::unique_ptr<Optimizer> opt_;
    LoaderOptions loader_options_;
    std::unique_ptr<DataLoader> loader_;  // reads train_set_, so a Trainer never moves
    std::vector<EpochRecord> history_;
    int64_t epoch_ = 0, batch_ = 0;  // the moment: epochs done, batches of the next epoch done
    EpochSums resumed_sums_;         // the running sums of a mid-epoch resume (used by the next train_epoch)
    bool spent_ = false;
};

// Trainer(config, log).run(): what `glassbox train` does.
TrainResult run_training(const TrainConfig& config, std::ostream& log);

// Eval-mode pass over `data` (batches of `batch_size`, no gradients). With `comm` of more than one rank, each
// rank takes its shard of the images (dist::shard_of) and the loss and counts are summed over the ranks.
EvalResult evaluate(layers::Layer& model, const io::Dataset& data, const LoaderOptions& loader, Device device,
                    std::ostream* progress = nullptr, const dist::Comm* comm = nullptr);

// metrics.csv / metrics.json contents for a history.
std::string metrics_csv(const std::vector<EpochRecord>& history);
std::string metrics_json(const std::vector<EpochRecord>& history);

}  // namespace gb::train
