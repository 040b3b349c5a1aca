#include "train/distill.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/factory.h"
#include "io/file_util.h"
#include "models/checkpoint.h"
#include "models/registry.h"
#include "train/metrics.h"
#include "train/optimizer.h"
#include "train/progress.h"
#include "train/run_files.h"
#include "train/schedule.h"

namespace gb::train {

namespace {

using detail::fmt;

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Rows [first, first + n) of a host matrix, gathered by index, as a tensor on `device`.
Tensor gather_rows(const Tensor& rows, const std::vector<int64_t>& index, int64_t first, int64_t n, Device device) {
    const int64_t width = rows.dim(1);
    Tensor out(Shape{n, width});
    const float* src = rows.data<float>();
    float* dst = out.data<float>();
    for (int64_t i = 0; i < n; ++i)
        std::memcpy(dst + i * width, src + index[static_cast<size_t>(first + i)] * width,
                    static_cast<size_t>(width) * sizeof(float));
    return out.to(device);
}

// The teacher's logits for normalised rows, batch by batch, without gradients (host [N, classes]).
Tensor teacher_logits(models::Vgg& teacher, const Tensor& rows, const io::Dataset& data, Device device,
                      const std::string& label, std::ostream& log) {
    autograd::NoGradGuard no_grad;
    const int64_t N = rows.dim(0), B = 256, K = data.classes();
    Tensor out(Shape{N, K});
    Progress bar(label, (N + B - 1) / B, log, Progress::is_terminal(log));
    const std::vector<std::pair<std::string, std::string>> none;
    for (int64_t s = 0, b = 0; s < N; s += B, ++b) {
        const int64_t n = std::min(B, N - s);
        const Tensor x = rows.narrow(s, n).view(Shape{n, data.channels(), data.height(), data.width()}).to(device);
        const Tensor y = teacher(x).to(Device::cpu());
        std::memcpy(out.data<float>() + s * K, y.data<float>(), static_cast<size_t>(n * K) * sizeof(float));
        bar.update(b + 1, s + n, none);
    }
    bar.finish();
    return out;
}

}  // namespace

void DistillConfig::validate() const {
    GB_CHECK(!checkpoint.empty(), "distill: no teacher checkpoint given");
    GB_CHECK(depth >= 1 && depth <= models::SoftTreeConfig::kMaxDepth, "distill: depth ", depth, " is outside [1, ",
             models::SoftTreeConfig::kMaxDepth, "]");
    GB_CHECK(targets == "soft" || targets == "hard", "distill: targets '", targets, "' (expected soft or hard)");
    GB_CHECK(std::isfinite(temperature) && temperature > 0.f, "distill: temperature ", temperature,
             " (expected a number > 0)");
    GB_CHECK(epochs >= 1, "distill: epochs ", epochs, " (expected >= 1)");
    GB_CHECK(batch_size >= 1, "distill: batch size ", batch_size, " (expected >= 1)");
    GB_CHECK(std::isfinite(lr) && lr > 0.f, "distill: learning rate ", lr, " (expected a number > 0)");
    GB_CHECK(std::isfinite(lambda) && lambda >= 0.f, "distill: lambda ", lambda, " (expected a number >= 0)");
    GB_CHECK(std::isfinite(beta) && beta > 0.f, "distill: beta ", beta, " (expected a number > 0)");
    GB_CHECK(train_limit >= 0 && test_limit >= 0, "distill: negative image limit");
}

Tensor normalized_rows(const Tensor& images, const std::vector<float>& mean, const std::vector<float>& stddev) {
    const int64_t N = images.dim(0), C = images.dim(1), HW = images.numel() / (N * C);
    Tensor out(Shape{N, C * HW});
    const Tensor src = images.to(Device::cpu());
    const float* x = src.data<float>();
    float* y = out.data<float>();
    for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c) {
            const float m = mean.empty() ? 0.f : mean[static_cast<size_t>(c)];
            const float s = mean.empty() ? 1.f : stddev[static_cast<size_t>(c)];
            const int64_t o = (n * C + c) * HW;
            for (int64_t i = 0; i < HW; ++i) y[o + i] = (x[o + i] - m) / s;
        }
    return out;
}

Scores score(const std::vector<int32_t>& predicted, const Tensor& labels, const std::vector<int32_t>& teacher) {
    const std::vector<int32_t> lab = labels.to_vector<int32_t>();
    GB_CHECK(predicted.size() == lab.size() && teacher.size() == lab.size(), "score: ", predicted.size(),
             " predictions, ", lab.size(), " labels and ", teacher.size(), " teacher predictions");
    Scores s;
    if (lab.empty()) return s;
    int64_t right = 0, agree = 0;
    for (size_t i = 0; i < lab.size(); ++i) {
        right += predicted[i] == lab[i];
        agree += predicted[i] == teacher[i];
    }
    s.accuracy = static_cast<double>(right) / static_cast<double>(lab.size());
    s.fidelity = static_cast<double>(agree) / static_cast<double>(lab.size());
    return s;
}

DistillResult run_distillation(const DistillConfig& c, std::ostream& log) {
    c.validate();
    DistillResult r;
    const io::Dataset train_set = io::load_dataset(c.data, io::Split::Train, c.data_dir).head(c.train_limit);
    r.test = io::load_dataset(c.data, io::Split::Test, c.data_dir).head(c.test_limit);
    r.train_images = train_set.size();

    models::ModelOptions mo{train_set.channels(), train_set.height(), train_set.classes()};
    models::Checkpoint ck = models::load_checkpoint(c.checkpoint, c.model, &mo);
    const models::VggConfig& vc = ck.model->config();
    GB_CHECK(vc.num_classes == train_set.classes() && vc.in_channels == train_set.channels(), c.checkpoint,
             ": the teacher ('", vc.name, "') takes ", vc.in_channels, "-channel images in ", vc.num_classes,
             " classes; ", c.data, " has ", train_set.channels(), " channels and ", train_set.classes(), " classes");
    if (!models::read_normalization(ck.metadata(), c.checkpoint, r.mean, r.stddev))
        log << "note: " << c.checkpoint << " records no input normalisation; the tree and the teacher see raw [0, 1] pixels\n";
    ck.model->to(c.device);
    ck.model->eval();

    const Tensor train_rows = normalized_rows(train_set.images, r.mean, r.stddev);
    r.test_rows = normalized_rows(r.test.images, r.mean, r.stddev);
    const int64_t N = train_rows.dim(0), K = train_set.classes();
    log << "teacher: " << c.checkpoint << " (" << vc.name << "), " << N << " training and " << r.test.size()
        << " test images of " << c.data << "\n";

    auto t0 = std::chrono::steady_clock::now();
    r.teacher_test = predictions(teacher_logits(*ck.model, r.test_rows, r.test, c.device, "teacher (test)", log));
    r.teacher_accuracy = score(r.teacher_test, r.test.labels, r.teacher_test).accuracy;
    Tensor targets(Shape{N, K});
    if (c.targets == "soft") {
        const Tensor logits = teacher_logits(*ck.model, train_rows, train_set, c.device, "teacher (train)", log);
        autograd::NoGradGuard no_grad;
        targets = softmax(scale(logits, 1.f / c.temperature));
    } else {
        fill(targets, 0.f);
        const std::vector<int32_t> lab = train_set.labels.to_vector<int32_t>();
        for (int64_t n = 0; n < N; ++n) targets.data<float>()[n * K + lab[static_cast<size_t>(n)]] = 1.f;
    }
    r.teacher_seconds = seconds_since(t0);
    log << "teacher test accuracy " << fmt(100 * r.teacher_accuracy, 2) << "% (" << fmt(r.teacher_seconds, 1)
        << " s); targets: " << (c.targets == "soft" ? "softmax(logits / " + fmt(c.temperature, 2) + ")" : "labels")
        << "\n";

    models::SoftTreeConfig tc;
    tc.depth = c.depth;
    tc.channels = train_set.channels();
    tc.height = train_set.height();
    tc.width = train_set.width();
    tc.classes = K;
    tc.beta = c.beta;
    Generator gen(c.seed);
    r.tree = std::make_shared<models::SoftTree>(tc, gen);
    r.tree->to(c.device);
    r.tree->train();
    Adam opt(r.tree->named_parameters(), kernels::AdamParams{.lr = c.lr});
    Schedule sched{.kind = "cosine", .base_lr = c.lr, .total_epochs = c.epochs};
    const Tensor test_x = r.test_rows.to(c.device);
    const int64_t batches = (N + c.batch_size - 1) / c.batch_size;
    std::vector<int64_t> order(static_cast<size_t>(N));
    t0 = std::chrono::steady_clock::now();
    for (int64_t epoch = 0; epoch < c.epochs; ++epoch) {
        const auto e0 = std::chrono::steady_clock::now();
        // Fisher-Yates from a stream of its own per epoch: the order is a function of (seed, epoch).
        Generator shuffle;
        shuffle.set_state(c.seed, static_cast<uint64_t>(epoch) << 40);
        for (int64_t i = 0; i < N; ++i) order[static_cast<size_t>(i)] = i;
        for (int64_t i = N - 1; i > 0; --i)
            std::swap(order[static_cast<size_t>(i)], order[shuffle.below(static_cast<uint64_t>(i + 1))]);
        Progress bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(c.epochs), batches, log,
                     Progress::is_terminal(log));
        double loss_sum = 0, data_sum = 0, pen_sum = 0, lr = 0;
        for (int64_t b = 0; b < batches; ++b) {
            lr = sched.lr_at(static_cast<double>(epoch) + static_cast<double>(b) / static_cast<double>(batches));
            opt.set_lr(static_cast<float>(lr));
            const int64_t first = b * c.batch_size, n = std::min(c.batch_size, N - first);
            const Tensor x = gather_rows(train_rows, order, first, n, c.device);
            const Tensor t = gather_rows(targets, order, first, n, c.device);
            const models::SoftTreeLoss l = r.tree->loss(x, t, c.lambda);
            const float lv = l.total.item();
            if (!std::isfinite(lv)) {
                bar.finish();
                GB_FAIL("distill: the loss became ", lv, " at epoch ", epoch + 1, ", batch ", b + 1,
                        " (learning rate ", lr, "); try a lower --lr");
            }
            opt.zero_grad();
            autograd::backward(l.total);
            opt.step();
            loss_sum += lv;
            data_sum += l.data.item();
            pen_sum += l.penalty.item();
            const double done = static_cast<double>(b + 1);
            bar.update(b + 1, first + n,
                       std::vector<std::pair<std::string, std::string>>{{"loss", fmt(loss_sum / done, 4)},
                                                                         {"penalty", fmt(pen_sum / done, 4)}});
            if (c.on_batch) c.on_batch(epoch + 1, c.epochs, b + 1, batches, loss_sum / done);
        }
        bar.finish();
        DistillEpoch rec;
        rec.epoch = epoch + 1;
        rec.lr = lr;
        rec.loss = loss_sum / static_cast<double>(batches);
        rec.data_loss = data_sum / static_cast<double>(batches);
        rec.penalty = pen_sum / static_cast<double>(batches);
        r.tree->eval();
        const Scores s = score(r.tree->predict(test_x).label, r.test.labels, r.teacher_test);
        r.tree->train();
        rec.test_accuracy = s.accuracy;
        rec.fidelity = s.fidelity;
        rec.seconds = seconds_since(e0);
        r.history.push_back(rec);
        log << "epoch " << rec.epoch << "/" << c.epochs << ": loss " << fmt(rec.loss, 4) << " (penalty "
            << fmt(rec.penalty, 4) << "), test accuracy " << fmt(100 * s.accuracy, 2) << "%, fidelity "
            << fmt(100 * s.fidelity, 2) << "%, " << fmt(rec.seconds, 1) << " s\n";
    }
    r.tree_seconds = seconds_since(t0);
    r.tree_test = r.tree->predict(test_x);
    r.mixture_test = predictions(r.tree_test.mixture);
    r.tree->to(Device::cpu());
    r.tree_scores = score(r.tree_test.label, r.test.labels, r.teacher_test);
    r.mixture = score(r.mixture_test, r.test.labels, r.teacher_test);
    log << "soft tree (depth " << c.depth << ", " << fmt(r.tree_seconds, 1) << " s): test accuracy "
        << fmt(100 * r.tree_scores.accuracy, 2) << "%, fidelity " << fmt(100 * r.tree_scores.fidelity, 2)
        << "% (mixture of the leaves: " << fmt(100 * r.mixture.accuracy, 2) << "%, " << fmt(100 * r.mixture.fidelity, 2)
        << "%)\n";

    if (c.cart) {
        t0 = std::chrono::steady_clock::now();
        models::CartOptions co;
        co.max_depth = c.depth;
        Progress bar("CART", c.depth, log, Progress::is_terminal(log));
        co.on_level = [&](int64_t level, int64_t, int64_t nodes) {
            bar.update(level, level * N, std::vector<std::pair<std::string, std::string>>{{"nodes", std::to_string(nodes)}});
        };
        const std::vector<int32_t> lab = train_set.labels.to_vector<int32_t>();
        r.cart = models::fit_cart(train_rows.data<float>(), N, train_rows.dim(1), lab.data(), K, co);
        bar.finish();
        r.cart_test = r.cart.predict(r.test_rows.data<float>(), r.test_rows.dim(0));
        r.cart_scores = score(r.cart_test, r.test.labels, r.teacher_test);
        r.cart_seconds = seconds_since(t0);
        log << "CART (depth " << c.depth << ", Gini, " << r.cart.leaves() << " leaves, " << fmt(r.cart_seconds, 1)
            << " s): test accuracy " << fmt(100 * r.cart_scores.accuracy, 2) << "%, fidelity "
            << fmt(100 * r.cart_scores.fidelity, 2) << "%\n";
    }

    // Raw pixels record no normalisation (as a checkpoint of glassbox train without one).
    const std::map<std::string, std::string> norm =
        r.mean.empty() ? std::map<std::string, std::string>{} : models::normalization_metadata(r.mean, r.stddev);
    r.metadata = norm;
    r.metadata["distill.teacher"] = c.checkpoint;
    r.metadata["distill.data"] = c.data;
    r.metadata["distill.targets"] = c.targets;
    r.metadata["distill.temperature"] = fmt(c.temperature, 6);
    r.metadata["distill.epochs"] = std::to_string(c.epochs);
    r.metadata["distill.batch_size"] = std::to_string(c.batch_size);
    r.metadata["distill.lr"] = fmt(c.lr, 8);
    r.metadata["distill.lambda"] = fmt(c.lambda, 8);
    r.metadata["distill.seed"] = std::to_string(c.seed);
    r.metadata["test_accuracy"] = fmt(r.tree_scores.accuracy, 6);
    r.metadata["fidelity"] = fmt(r.tree_scores.fidelity, 6);
    if (!c.out_dir.empty()) {
        std::filesystem::create_directories(c.out_dir);
        const std::filesystem::path dir(c.out_dir);
        r.tree_path = (dir / "tree.safetensors").string();
        models::save_soft_tree(r.tree_path, *r.tree, r.metadata);
        if (c.cart) {
            std::map<std::string, std::string> cm = norm;
            cm["cart.input"] = std::to_string(tc.channels) + "," + std::to_string(tc.height) + "," + std::to_string(tc.width);
            cm["distill.data"] = c.data;
            r.cart_path = (dir / "cart.safetensors").string();
            models::save_cart(r.cart_path, r.cart, cm);
        }
        r.results_json = (dir / "results.json").string();
        const std::string text = distill_results_json(c, r);
        io::write_file_atomic(r.results_json, [&](std::ostream& out) { out << text; });
        log << "wrote " << r.tree_path << (c.cart ? ", " + r.cart_path : "") << ", " << r.results_json << "\n";
    }
    return r;
}

std::string distill_results_json(const DistillConfig& c, const DistillResult& r) {
    nlohmann::ordered_json j;
    j["config"] = {{"checkpoint", c.checkpoint}, {"data", c.data},         {"depth", c.depth},
                   {"targets", c.targets},       {"temperature", c.temperature}, {"epochs", c.epochs},
                   {"batch_size", c.batch_size}, {"lr", c.lr},             {"lambda", c.lambda},
                   {"beta", c.beta},             {"seed", c.seed},         {"train_images", r.train_images},
                   {"test_images", r.test.size()}};
    j["teacher"] = {{"accuracy", r.teacher_accuracy}, {"seconds", r.teacher_seconds}};
    j["tree"] = {{"accuracy", r.tree_scores.accuracy}, {"fidelity", r.tree_scores.fidelity},
                 {"mixture_accuracy", r.mixture.accuracy}, {"mixture_fidelity", r.mixture.fidelity},
                 {"seconds", r.tree_seconds}};
    if (r.cart.nodes() > 0)
        j["cart"] = {{"accuracy", r.cart_scores.accuracy}, {"fidelity", r.cart_scores.fidelity},
                     {"leaves", r.cart.leaves()}, {"depth", r.cart.max_depth()}, {"seconds", r.cart_seconds}};
    nlohmann::ordered_json h = nlohmann::ordered_json::array();
    for (const DistillEpoch& e : r.history)
        h.push_back({{"epoch", e.epoch}, {"lr", e.lr}, {"loss", e.loss}, {"data_loss", e.data_loss},
                     {"penalty", e.penalty}, {"test_accuracy", e.test_accuracy}, {"fidelity", e.fidelity},
                     {"seconds", e.seconds}});
    j["history"] = h;
    return j.dump(2) + "\n";
}

}  // namespace gb::train
