// train/: schedules, the data loader, optimizers' state, metrics, and the
// training loop (a tiny model overfits, resume == uninterrupted, NaN stops).
#include <cmath>
#include <filesystem>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "idx_writer.h"
#include "io/safetensors.h"
#include "models/registry.h"
#include "testing.h"
#include "train_config.h"
#include "train/loader.h"
#include "train/metrics.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "train/trainer.h"

using namespace gb;
using namespace gb::testing;

TEST_CASE("schedules: closed forms") {
    train::Schedule s;
    s.base_lr = 0.1f;
    s.total_epochs = 10;
    CHECK(s.lr_at(7.3) == doctest::Approx(0.1));
    s.kind = "step";
    s.step_size = 3;
    s.gamma = 0.5f;
    CHECK(s.lr_at(2.9) == doctest::Approx(0.1));
    CHECK(s.lr_at(3.0) == doctest::Approx(0.05));
    CHECK(s.lr_at(6.5) == doctest::Approx(0.025));
    s.kind = "cosine";
    s.min_lr = 0.01f;
    CHECK(s.lr_at(0) == doctest::Approx(0.1));
    CHECK(s.lr_at(5) == doctest::Approx(0.055));  // halfway: min + (base - min) / 2
    CHECK(s.lr_at(10) == doctest::Approx(0.01));
    s.warmup_epochs = 2;
    CHECK(s.lr_at(1) < 0.06);
    CHECK(s.lr_at(1) > 0.04);
    CHECK(s.lr_at(2) == doctest::Approx(0.1));
    s.kind = "linear";
    CHECK_THROWS_WITH_AS(s.validate(), doctest::Contains("unknown learning-rate schedule 'linear'"), Error);
}

namespace {
io::Dataset tiny_dataset(int64_t n, int64_t size) {
    io::Dataset d;
    d.name = "tiny";
    d.images = rand_tensor(Shape{n, 1, size, size}, 7, 0.f, 1.f);
    std::vector<int32_t> l(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) l[static_cast<size_t>(i)] = static_cast<int32_t>(i % 4);
    d.labels = from_vector(l, Shape{n});
    d.class_names = {"a", "b", "c", "d"};
    return d;
}
}  // namespace

TEST_CASE("loader: order is a seeded permutation, batches are normalised and augmented reproducibly") {
    const io::Dataset d = tiny_dataset(10, 4);
    train::LoaderOptions o;
    o.batch_size = 4;
    o.seed = 11;
    o.mean = {0.5f};
    o.stddev = {0.25f};
    train::DataLoader a(d, o), b(d, o);
    CHECK(a.size() == 3);
    a.set_epoch(1);
    b.set_epoch(1);
    std::vector<int64_t> seen;
    for (int64_t i = 0; i < a.size(); ++i) {
        const train::Batch x = a.batch(i), y = b.batch(i);
        CHECK(x.indices == y.indices);
        CHECK(x.images.to_vector<float>() == y.images.to_vector<float>());
        seen.insert(seen.end(), x.indices.begin(), x.indices.end());
    }
    std::vector<int64_t> sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    a.set_epoch(2);
    CHECK(a.batch(0).indices != b.batch(0).indices);
    // Normalisation: (x - 0.5) / 0.25 of the stored pixel.
    const train::Batch x = b.batch(0);
    const float raw = d.images.to_vector<float>()[static_cast<size_t>(x.indices[0] * 16 + 5)];
    CHECK(x.images.to_vector<float>()[5] == doctest::Approx((raw - 0.5f) / 0.25f));
    CHECK(x.labels.to_vector<int32_t>()[0] == x.indices[0] % 4);
    // A shard of a batch (rows [1, 3) of batch 1) is those rows of the batch, augmentation and all.
    {
        train::LoaderOptions aug = o;
        aug.crop_padding = 1;
        aug.hflip = true;
        train::DataLoader whole(d, aug);
        whole.set_epoch(3);
        const train::Batch all = whole.batch(1), part = whole.batch(1, 1, 2);
        CHECK(part.indices == std::vector<int64_t>(all.indices.begin() + 1, all.indices.begin() + 3));
        const auto av = all.images.to_vector<float>(), pv = part.images.to_vector<float>();
        CHECK(pv == std::vector<float>(av.begin() + 16, av.begin() + 48));
        CHECK(part.labels.to_vector<int32_t>() == std::vector<int32_t>{all.labels.to_vector<int32_t>()[1],
                                                                         all.labels.to_vector<int32_t>()[2]});
        CHECK(whole.batch(2, 0, 2).indices.size() == 2);  // the last batch has 2 rows
        CHECK_THROWS_AS(whole.batch(2, 1, 2), Error);
    }
    o.drop_last = true;
    CHECK(train::DataLoader(d, o).size() == 2);

    // Flip only: every image is its own mirror or itself; crop: values come from the image or the zero padding.
    train::LoaderOptions f;
    f.batch_size = 10;
    f.shuffle = false;
    f.hflip = true;
    const train::Batch fb = train::DataLoader(d, f).batch(0);
    const auto img = d.images.to_vector<float>(), out = fb.images.to_vector<float>();
    int flipped = 0;
    for (int64_t n = 0; n < 10; ++n) {
        bool same = true, mirror = true;
        for (int64_t y = 0; y < 4; ++y)
            for (int64_t xx = 0; xx < 4; ++xx) {
                const float o2 = out[static_cast<size_t>(n * 16 + y * 4 + xx)];
                same &= o2 == img[static_cast<size_t>(n * 16 + y * 4 + xx)];
                mirror &= o2 == img[static_cast<size_t>(n * 16 + y * 4 + 3 - xx)];
            }
        CHECK((same || mirror));
        flipped += mirror && !same;
    }
    CHECK(flipped > 0);
    CHECK(flipped < 10);
    train::LoaderOptions zero;
    zero.batch_size = 0;
    CHECK_THROWS_WITH_AS(train::DataLoader(d, zero), doctest::Contains("batch size"), Error);
    // A batch larger than the dataset is one batch of everything, however large (no overflow in the count).
    train::LoaderOptions huge;
    huge.batch_size = INT64_MAX;
    huge.shuffle = false;
    const train::DataLoader all(d, huge);
    CHECK(all.size() == 1);
    CHECK(all.batch(0).labels.numel() == d.size());
}

TEST_CASE("optimizers: SGD with momentum by hand, state survives a save/load") {
    // f(p) = 0.5 * p^2 -> grad = p. PyTorch SGD(lr 0.1, momentum 0.9): b1 = g1, p1 = p0 - 0.1 b1; b2 = 0.9 b1 + g2.
    Tensor p = from_vector(std::vector<float>{2.f}, Shape{1}).set_requires_grad();
    kernels::SgdParams sp;
    sp.lr = 0.1f;
    sp.momentum = 0.9f;
    train::Sgd opt({{"p", p}}, sp);
    for (int i = 0; i < 2; ++i) {
        opt.zero_grad();
        autograd::backward(scale(mul(p, p), 0.5f));
        opt.step();
    }
    // p1 = 2 - 0.2 = 1.8; b2 = 0.9 * 2 + 1.8 = 3.6; p2 = 1.8 - 0.36 = 1.44.
    CHECK(p.item() == doctest::Approx(1.44f));
    CHECK(opt.state()[0].first == "p.momentum_buffer");
    CHECK(opt.state()[0].second.item() == doctest::Approx(3.6f));

    Tensor q = from_vector(std::vector<float>{1.f, -1.f}, Shape{2}).set_requires_grad();
    kernels::AdamParams ap;
    train::Adam adam({{"q", q}}, ap);
    q.set_grad(from_vector(std::vector<float>{0.5f, 0.25f}, Shape{2}));
    adam.step();
    train::Adam restored({{"q", q}}, ap);
    restored.load_state(adam.state(), adam.state_metadata());
    CHECK(restored.steps() == 1);
    CHECK(restored.state()[1].second.to_vector<float>() == adam.state()[1].second.to_vector<float>());
    kernels::AdamParams wp;
    wp.decoupled = true;
    train::Adam adamw({{"q", q}}, wp);
    CHECK_THROWS_WITH_AS(adamw.load_state(adam.state(), adam.state_metadata()),
                         doctest::Contains("optimizer is 'adam', this run uses 'adamw'"), Error);
}

TEST_CASE("metrics: predictions, accuracy and the confusion matrix") {
    const Tensor logits = from_vector(std::vector<float>{0.f, 2.f, 1.f, 5.f, 5.f, 0.f, 0.f, 0.f, 1.f}, Shape{3, 3});
    CHECK(train::predictions(logits) == std::vector<int32_t>{1, 0, 2});
    train::ConfusionMatrix cm(3);
    cm.add(train::predictions(logits), from_vector(std::vector<int32_t>{1, 1, 2}, Shape{3}));
    CHECK(cm.accuracy() == doctest::Approx(2.0 / 3.0));
    CHECK(cm.count(1, 0) == 1);
    const auto pc = cm.per_class_accuracy();
    CHECK(std::isnan(pc[0]));
    CHECK(pc[1] == doctest::Approx(0.5));
    CHECK(cm.markdown({"x", "y", "z"}).find("| y | 1 | 1 | 0 |") != std::string::npos);
}

TEST_CASE("training: a tiny model overfits a tiny batch") {
    // 16 random 8x8 images, 4 classes: 60 Adam steps must drive the loss below 0.05
    // (it starts near log 4 = 1.39); dropout is off so the loss is deterministic.
    models::VggConfig cfg = models::model_config("vgg-mini", {1, 8, 4});
    cfg.dropout = 0.f;
    Generator g(5);
    models::Vgg model(cfg, g);
    const io::Dataset d = tiny_dataset(16, 8);
    kernels::AdamParams ap;
    ap.lr = 2e-3f;
    train::Adam opt(model.named_parameters(), ap);
    float first = 0, last = 0;
    for (int step = 0; step < 60; ++step) {
        Tensor loss = cross_entropy(model(d.images), d.labels);
        if (step == 0) first = loss.item();
        last = loss.item();
        opt.zero_grad();
        autograd::backward(loss);
        opt.step();
    }
    CHECK(first > 1.2f);
    CHECK(last < 0.05f);
}

namespace {
train::TrainConfig tiny_run(const std::string& data_dir, const std::string& out) {
    return small_train_config(data_dir, out, 16, 3);
}
}  // namespace

TEST_CASE("training: resuming after epoch 1 gives exactly the uninterrupted run") {
    TempDir dir("resume");
    write_fake_mnist(dir.path(), 80, 20, 8, false);
    std::ostringstream log;
    const train::TrainResult full = train::run_training(tiny_run(dir.path(), dir.path("full")), log);
    REQUIRE(full.history.size() == 2);

    // The same 2-epoch run, stopped after its first epoch (as an interruption leaves it), then resumed.
    train::TrainConfig part = tiny_run(dir.path(), dir.path("split"));
    part.stop_after = 1;
    const train::TrainResult r1 = train::run_training(part, log);
    CHECK(r1.history.size() == 1);
    train::TrainConfig cont = tiny_run(dir.path(), dir.path("split"));
    cont.resume = r1.resume_path;
    const train::TrainResult r2 = train::run_training(cont, log);
    REQUIRE(r2.history.size() == 2);
    CHECK(r2.history[0].train_loss == full.history[0].train_loss);
    CHECK(r2.history[1].train_loss == full.history[1].train_loss);
    CHECK(r2.history[1].test_acc == full.history[1].test_acc);
    const io::SafeTensors a = io::load_safetensors(full.model_path), b = io::load_safetensors(r2.model_path);
    REQUIRE(a.tensors.size() == b.tensors.size());
    for (size_t i = 0; i < a.tensors.size(); ++i) {
        CAPTURE(a.tensors[i].first);
        CHECK(a.tensors[i].second.to_vector<float>() == b.tensors[i].second.to_vector<float>());
    }
    CHECK(std::filesystem::exists(full.metrics_csv));
    CHECK(std::filesystem::exists(full.metrics_json));
}

TEST_CASE("training: a loss that turns NaN stops the run and keeps the last good checkpoint") {
    TempDir dir("nan");
    write_fake_mnist(dir.path(), 40, 10, 8, false);
    std::ostringstream log;
    train::TrainConfig c = tiny_run(dir.path(), dir.path("run"));
    c.stop_after = 1;
    const train::TrainResult r1 = train::run_training(c, log);
    train::TrainConfig bad = tiny_run(dir.path(), dir.path("run"));
    bad.resume = r1.resume_path;
    bad.lr = 1e30f;
    bad.schedule.kind = "constant";
    CHECK_THROWS_WITH_AS(train::run_training(bad, log), doctest::Contains("training stopped: the loss became"), Error);
    const io::SafeTensors kept = io::load_safetensors(r1.model_path);
    CHECK(kept.metadata.at("train.epoch") == "1");
    for (const auto& [n, t] : kept.tensors)
        for (float v : t.to_vector<float>()) REQUIRE(std::isfinite(v));
}

namespace {
// Every tensor of two safetensors files holds the same floats.
void check_same_floats(const std::string& a_path, const std::string& b_path) {
    const io::SafeTensors a = io::load_safetensors(a_path), b = io::load_safetensors(b_path);
    REQUIRE(a.tensors.size() == b.tensors.size());
    for (size_t i = 0; i < a.tensors.size(); ++i) {
        CAPTURE(a.tensors[i].first);
        CHECK(a.tensors[i].first == b.tensors[i].first);
        if (a.tensors[i].second.dtype() == DType::Float32)
            CHECK(a.tensors[i].second.to_vector<float>() == b.tensors[i].second.to_vector<float>());
    }
}
}  // namespace

TEST_CASE("Trainer: train_epoch, evaluate, record_epoch and save_checkpoint are run() with 1 epoch, bit for bit") {
    TempDir dir("trainer_pieces");
    write_fake_mnist(dir.path(), 48, 16, 8, false);
    std::ostringstream log;
    train::TrainConfig c = tiny_run(dir.path(), dir.path("run"));
    c.epochs = 1;
    const train::TrainResult full = train::run_training(c, log);
    REQUIRE(full.history.size() == 1);

    c.out_dir = dir.path("pieces");
    train::Trainer t(c, log);
    CHECK_FALSE(t.started());
    CHECK_THROWS_WITH_AS(t.train_epoch(), doctest::Contains("before start() or resume()"), Error);
    t.start();
    const train::EpochRecord trained = t.train_epoch();
    CHECK(t.epochs_done() == 1);
    CHECK(trained.train_loss == full.history[0].train_loss);
    CHECK(trained.train_acc == full.history[0].train_acc);
    const train::EvalResult test = t.evaluate();
    CHECK(test.loss == full.history[0].test_loss);
    CHECK(test.confusion.accuracy() == full.history[0].test_acc);
    CHECK_FALSE(std::filesystem::exists(dir.path("pieces/model.safetensors")));  // nothing is written until asked
    t.record_epoch(trained, test);
    REQUIRE(t.history().size() == 1);
    t.save_checkpoint();
    check_same_floats(full.model_path, t.result().model_path);
    check_same_floats(full.resume_path, t.result().resume_path);
    CHECK_THROWS_WITH_AS(t.train_epoch(), doctest::Contains("all 1 epochs are done"), Error);
}

TEST_CASE("Trainer: save_checkpoint refuses non-finite weights and keeps the last good checkpoint") {
    TempDir dir("trainer_nonfinite");
    write_fake_mnist(dir.path(), 32, 16, 8, false);
    std::ostringstream log;
    train::Trainer t(tiny_run(dir.path(), dir.path("run")), log);
    t.start();
    t.run_epoch();  // epoch 1 saved: the last good checkpoint
    const std::string model_path = t.result().model_path, resume_path = t.result().resume_path;
    const std::string model_bytes = read_text(model_path), resume_bytes = read_text(resume_path);

    // Weights a caller (or a diverging step) made non-finite after the epoch: never written.
    Tensor w = t.model().named_parameters().back().second;
    w.data<float>()[0] = std::nanf("");
    std::string message;
    try {
        t.save_checkpoint();
    } catch (const Error& e) {
        message = e.what();
    }
    MESSAGE(message);
    CHECK(message.find("training stopped: the model's 'classifier.") != std::string::npos);
    CHECK(message.find("became NaN or infinite before the checkpoint of epoch 1") != std::string::npos);
    CHECK(message.find("nothing of that moment was saved") != std::string::npos);
    CHECK(message.find(model_path + " is from epoch 1, " + resume_path + " is from epoch 1") != std::string::npos);
    CHECK(read_text(model_path) == model_bytes);
    CHECK(read_text(resume_path) == resume_bytes);
    // The Trainer is spent: it refuses to go on from weights it would not save.
    CHECK_THROWS_WITH_AS(t.train_epoch(), doctest::Contains("after a failed step"), Error);

    // The files continue the run (a new Trainer resumes from them): epoch 2 is trained from finite weights.
    train::Trainer again(tiny_run(dir.path(), dir.path("run")), log);
    again.resume(resume_path);
    CHECK(again.epochs_done() == 1);
    CHECK(again.history().size() == 1);
    CHECK_THROWS_WITH_AS(again.start(), doctest::Contains("already started"), Error);
    const train::TrainResult r = again.run();
    CHECK(r.history.size() == 2);
    CHECK(std::isfinite(r.history[1].train_loss));
}

// The snippet of docs/training.md ("From C++"), on the test's data: a loop of one's own with an early stop.
namespace {
double train_until(const train::TrainConfig& config, double target_accuracy, std::ostream& log) {
    gb::train::Trainer trainer(config, log);
    trainer.start();  // or trainer.resume("runs/mine/resume.safetensors")
    double accuracy = 0;
    while (trainer.epochs_done() < config.epochs) {
        const gb::train::EpochRecord trained = trainer.train_epoch();
        const gb::train::EvalResult test = trainer.evaluate();
        trainer.record_epoch(trained, test);
        trainer.save_checkpoint();  // model.safetensors, metrics, resume.safetensors
        accuracy = test.confusion.accuracy();
        if (accuracy >= target_accuracy) break;
    }
    return accuracy;
}
}  // namespace

TEST_CASE("Trainer: the docs/training.md loop stops early and leaves resumable files") {
    TempDir dir("trainer_docs");
    write_fake_mnist(dir.path(), 32, 16, 8, false);
    std::ostringstream log;
    train::TrainConfig c = tiny_run(dir.path(), dir.path("run"));
    c.epochs = 3;
    train_until(c, 0.0, log);  // any accuracy reaches 0: one epoch
    CHECK(io::load_safetensors(dir.path("run/resume.safetensors")).metadata.at("train.epoch") == "1");
    CHECK(log.str().find("epoch 1: train loss") != std::string::npos);
    CHECK(log.str().find("epoch 2: train loss") == std::string::npos);
}
