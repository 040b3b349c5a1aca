// The processes of a job (core/distributed.h) and data-parallel training (train/data_parallel.h). ctest runs
// this program twice where the build has MPI: alone (one process: every collective is the identity) and
// under `mpirun -n 2` (test_distributed_mpi2). The training cases compare the P-rank run with the one-process
// run of the same global batches (dist::self() on each rank), the reference, within float tolerance: the
// only difference is the order of the sums (sum_r (n_r / B) g_r against (1 / B) sum_i g_i).
#include <filesystem>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "core/distributed.h"
#include "core/factory.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "explain/evaluation.h"
#include "explain/explain_run.h"
#include "models/registry.h"
#include "idx_writer.h"
#include "models/checkpoint.h"
#include "io/safetensors.h"
#include "layers/dropout.h"
#include "layers/linear.h"
#include "testing.h"
#include "train/data_parallel.h"
#include "train/trainer.h"
#include "train_config.h"

using namespace gb;
using namespace gb::testing;

namespace {

const dist::Comm& world() { return dist::world(); }

std::vector<float> values(const io::SafeTensors& f) {
    std::vector<float> all;
    for (const auto& [name, t] : f.tensors)
        if (t.dtype() == DType::Float32)
            for (float v : t.to_vector<float>()) all.push_back(v);
    return all;
}

}  // namespace

TEST_CASE("shard_of: contiguous shards in rank order that make up the batch, sizes within one") {
    for (int ranks : {1, 2, 3, 5})
        for (int64_t total : {0, 1, 2, 7, 64, 65}) {
            int64_t next = 0;
            for (int r = 0; r < ranks; ++r) {
                const dist::Shard s = dist::shard_of(total, r, ranks);
                CHECK(s.first == next);
                CHECK(s.count >= total / ranks);
                CHECK(s.count <= total / ranks + 1);
                next += s.count;
            }
            CHECK(next == total);
        }
    CHECK_THROWS_AS(dist::shard_of(8, 2, 2), Error);
}

TEST_CASE("collectives: sums, maxima, a started sum, allgather and broadcast over the job's ranks") {
    const dist::Comm& w = world();
    const int P = w.size(), r = w.rank();
    // Under mpirun, in an MPI build, the job really has more than one rank.
    if (dist::launched_by_mpi() && dist::built_with_mpi()) CHECK(P > 1);
    // Closed forms: sum over ranks of (rank + 1) = P (P + 1) / 2.
    float f[3] = {static_cast<float>(r + 1), 0.5f, -1.f};
    w.allreduce_sum(f, 3);
    CHECK(f[0] == static_cast<float>(P * (P + 1) / 2));
    CHECK(f[1] == 0.5f * static_cast<float>(P));
    CHECK(f[2] == -static_cast<float>(P));
    double d = 0.25 * (r + 1);
    w.allreduce_sum(&d, 1);
    CHECK(d == 0.25 * P * (P + 1) / 2);
    int64_t i = int64_t{1} << (40 + r);
    w.allreduce_sum(&i, 1);
    int64_t expect = 0;
    for (int k = 0; k < P; ++k) expect += int64_t{1} << (40 + k);
    CHECK(i == expect);
    uint64_t m = 100 + static_cast<uint64_t>(r);
    w.allreduce_max(&m, 1);
    CHECK(m == 100 + static_cast<uint64_t>(P - 1));
    std::vector<float> big(100000, static_cast<float>(r));
    dist::Pending p = w.start_allreduce_sum(big.data(), static_cast<int64_t>(big.size()));
    p.wait();
    CHECK_FALSE(p.active());
    CHECK(big.front() == static_cast<float>(P * (P - 1) / 2));
    CHECK(big.back() == static_cast<float>(P * (P - 1) / 2));
    const std::vector<std::string> all = w.allgather("rank" + std::string(static_cast<size_t>(r), '+'));
    REQUIRE(all.size() == static_cast<size_t>(P));
    for (int k = 0; k < P; ++k) CHECK(all[static_cast<size_t>(k)] == "rank" + std::string(static_cast<size_t>(k), '+'));
    CHECK(w.broadcast(r == 0 ? "from rank 0" : "") == "from rank 0");
    // self(): this process alone, whatever the job.
    float s = 3.f;
    dist::self().allreduce_sum(&s, 1);
    CHECK(s == 3.f);
    CHECK(dist::self().size() == 1);
    w.barrier();
}

TEST_CASE("BatchRows: dropout on a shard of a batch draws the shard's rows of the whole batch's mask") {
    layers::Dropout drop(0.5f);
    drop.train();
    const Tensor x = ones(Shape{6, 40});
    default_generator().set_state(11, 5);
    const std::vector<float> whole = drop(x).to_vector<float>();
    const uint64_t after_whole = default_generator().offset();
    for (const auto& shard : std::vector<std::pair<int64_t, int64_t>>{{0, 2}, {2, 3}, {5, 1}}) {
        const int64_t first = shard.first, count = shard.second;
        CAPTURE(first);
        default_generator().set_state(11, 5);
        std::vector<float> part;
        {
            const BatchRows rows(first, count, 6);
            part = drop(x.narrow(0, count)).to_vector<float>();
        }
        CHECK(default_generator().offset() == after_whole);  // the whole batch's block was reserved
        CHECK(part == std::vector<float>(whole.begin() + first * 40, whole.begin() + (first + count) * 40));
    }
    const BatchRows rows(0, 2, 6);
    CHECK_THROWS_AS(drop(x.narrow(0, 3)), Error);  // a layer that sees other rows than the window's
}

TEST_CASE("GradientSync: the weighted sum of the ranks' gradients, in buckets started during the backward") {
    const dist::Comm& w = world();
    const int P = w.size(), r = w.rank();
    Generator g(5);
    layers::Linear a(6, 5, true, g), b(5, 3, true, g);
    train::NamedTensors params = a.named_parameters("a.");
    for (auto& p : b.named_parameters("b.")) params.push_back(p);
    // Buckets of 16 bytes or more: [b.bias, b.weight], [a.bias], [a.weight], the first started before the
    // backward reaches a.
    train::GradientSync sync(w, params, 16);
    CHECK(sync.buckets() == 3);
    // Rank r's rows: 2 + r of a batch of sum_k (2 + k); its loss is the mean over its rows.
    int64_t total = 0;
    for (int k = 0; k < P; ++k) total += 2 + k;
    const int64_t rows = 2 + r;
    const Tensor x = uniform(Shape{rows, 6}, -1.f, 1.f, g);
    auto loss_of = [&](const Tensor& in) { return scale(sum(b(a(in))), 1.f / static_cast<float>(in.dim(0))); };
    std::vector<int64_t> done_order;
    sync.begin(rows, total);
    autograd::backward(loss_of(x), Tensor(), false, [&](TensorImpl& leaf) {
        sync.ready(leaf);
        for (size_t k = 0; k < params.size(); ++k)
            if (&params[k].second.impl() == &leaf) done_order.push_back(static_cast<int64_t>(k));
    });
    // Every parameter's gradient was complete once, last layer first.
    CHECK(done_order.size() == params.size());
    CHECK(done_order.front() >= 2);
    sync.finish();
    // Reference: every rank's gradient of the mean over its rows, weighted n_r / B and summed in double,
    // recomputed here for each rank q from the seed that made its layers and rows.
    for (size_t k = 0; k < params.size(); ++k) {
        CAPTURE(params[k].first);
        std::vector<double> expect(static_cast<size_t>(params[k].second.numel()), 0.0);
        for (int q = 0; q < P; ++q) {
            Generator gq(5);
            layers::Linear aq(6, 5, true, gq), bq(5, 3, true, gq);
            const Tensor xq = uniform(Shape{2 + q, 6}, -1.f, 1.f, gq);
            Tensor lq = scale(sum(bq(aq(xq))), 1.f / static_cast<float>(2 + q));
            autograd::backward(lq);
            train::NamedTensors pq = aq.named_parameters("a.");
            for (auto& p : bq.named_parameters("b.")) pq.push_back(p);
            const auto gv = pq[k].second.grad().to_vector<float>();
            for (size_t i = 0; i < gv.size(); ++i) expect[i] += gv[i] * (2.0 + q) / static_cast<double>(total);
        }
        const auto got = params[k].second.grad().to_vector<float>();
        for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(expect[i]).epsilon(1e-5));
    }
}

TEST_CASE("data-parallel training: the ranks' run is the one-process run, bit for bit run to run") {
    const dist::Comm& w = world();
    TempDir dir("dp");
    write_fake_mnist(dir.path(), 90, 30, 8, false);  // 90 images in batches of 16: a last batch of 10
    std::ostringstream log;
    auto config = [&](const std::string& out, const dist::Comm& comm) {
        train::TrainConfig c = small_train_config(dir.path(), dir.path(out), 16, 3);
        c.comm = &comm;
        return c;
    };
    const train::TrainResult ranks = train::run_training(config("ranks", w), log);
    const train::TrainResult one = train::run_training(config("one", dist::self()), log);
    REQUIRE(ranks.history.size() == 2);
    // Rank 0 alone writes; every rank has the same history.
    CHECK(std::filesystem::exists(ranks.model_path) == w.is_root());
    CHECK(std::filesystem::exists(ranks.resume_path) == w.is_root());
    for (size_t e = 0; e < 2; ++e) {
        CAPTURE(e);
        CHECK(ranks.history[e].train_loss == doctest::Approx(one.history[e].train_loss).epsilon(1e-5));
        CHECK(ranks.history[e].train_acc == one.history[e].train_acc);
        CHECK(ranks.history[e].test_acc == one.history[e].test_acc);
        CHECK(ranks.history[e].test_loss == doctest::Approx(one.history[e].test_loss).epsilon(1e-5));
    }
    if (w.is_root()) {
        const auto a = values(io::load_safetensors(ranks.model_path)), b = values(io::load_safetensors(one.model_path));
        // 12 steps of SGD with momentum from the same start; the sums' order alone differs.
        CHECK(max_abs_diff(a, b) < 2e-5f);
        if (w.size() == 1) CHECK(a == b);
    }
    // At a fixed number of ranks the run repeats bit for bit.
    const train::TrainResult again = train::run_training(config("again", w), log);
    CHECK(again.history[1].train_loss == ranks.history[1].train_loss);
    if (w.is_root())
        CHECK(values(io::load_safetensors(again.model_path)) == values(io::load_safetensors(ranks.model_path)));
}

TEST_CASE("data-parallel training: a rank without rows (a last batch of one image, a test set of one)") {
    const dist::Comm& w = world();
    TempDir dir("dp-empty");
    write_fake_mnist(dir.path(), 17, 1, 8, false);  // batches of 16 and 1: on 2 ranks, rank 1 gets no row of the last
    std::ostringstream log;
    auto config = [&](const std::string& out, const dist::Comm& comm) {
        train::TrainConfig c = small_train_config(dir.path(), dir.path(out), 16, 6);
        c.comm = &comm;
        return c;
    };
    const train::TrainResult ranks = train::run_training(config("ranks", w), log);
    const train::TrainResult one = train::run_training(config("one", dist::self()), log);
    CHECK(ranks.history[1].test_acc == one.history[1].test_acc);
    CHECK(ranks.history[1].train_loss == doctest::Approx(one.history[1].train_loss).epsilon(1e-5));
    if (w.is_root())
        CHECK(max_abs_diff(values(io::load_safetensors(ranks.model_path)), values(io::load_safetensors(one.model_path))) <
              2e-5f);
}

TEST_CASE("data-parallel training: a run stopped on the ranks resumes in one process, and the other way") {
    const dist::Comm& w = world();
    TempDir dir("dp-resume");
    write_fake_mnist(dir.path(), 64, 16, 8, false);
    std::ostringstream log;
    auto config = [&](const std::string& out, const dist::Comm& comm) {
        train::TrainConfig c = small_train_config(dir.path(), dir.path(out), 16, 4);
        c.comm = &comm;
        return c;
    };
    const train::TrainResult full = train::run_training(config("full", dist::self()), log);
    // Epoch 1 on the ranks; rank 0's resume file is the job's; every rank resumes from it.
    train::TrainConfig first = config("split", w);
    first.stop_after = 1;
    const train::TrainResult r1 = train::run_training(first, log);
    const std::string resume_path = w.broadcast(w.is_root() ? r1.resume_path : "");
    // The file lives in rank 0's folder; other ranks (own temp folders) read it from there on one machine.
    train::TrainConfig second = config("split2", dist::self());
    second.resume = resume_path;
    const train::TrainResult r2 = train::run_training(second, log);
    REQUIRE(r2.history.size() == 2);
    CHECK(r2.history[1].train_loss == doctest::Approx(full.history[1].train_loss).epsilon(1e-5));
    const auto a = values(io::load_safetensors(r2.model_path)), b = values(io::load_safetensors(full.model_path));
    CHECK(max_abs_diff(a, b) < 2e-5f);
    // The other way: epoch 1 in one process (each rank on its own), epoch 2 on the ranks.
    train::TrainConfig alone = config("alone", dist::self());
    alone.stop_after = 1;
    const train::TrainResult s1 = train::run_training(alone, log);
    train::TrainConfig together = config("alone", w);
    together.resume = s1.resume_path;
    const train::TrainResult s2 = train::run_training(together, log);
    REQUIRE(s2.history.size() == 2);
    CHECK(s2.history[1].train_loss == doctest::Approx(full.history[1].train_loss).epsilon(1e-5));
    if (w.is_root()) CHECK(max_abs_diff(values(io::load_safetensors(s2.model_path)), b) < 2e-5f);
    w.barrier();  // rank 0's folder (the resume file) stays until every rank has read it
}

TEST_CASE("data-parallel training with BatchNorm: synchronised, the one-process run; by default, each rank's rows") {
    const dist::Comm& w = world();
    TempDir dir("dp-bn");
    write_fake_mnist(dir.path(), 90, 30, 8, false);  // batches of 16 and a last one of 10
    std::ostringstream log;
    auto config = [&](const std::string& out, const dist::Comm& comm, bool sync) {
        train::TrainConfig c = small_train_config(dir.path(), dir.path(out), 16, 3);
        c.model = "vgg-mini-bn";
        c.comm = &comm;
        c.sync_batchnorm = sync;
        return c;
    };
    const train::TrainResult one = train::run_training(config("one", dist::self(), false), log);
    const train::TrainResult synced = train::run_training(config("synced", w, true), log);
    const train::TrainResult local = train::run_training(config("local", w, false), log);
    CHECK(synced.history[1].train_loss == doctest::Approx(one.history[1].train_loss).epsilon(1e-5));
    if (w.is_root()) {
        const auto a = values(io::load_safetensors(one.model_path));
        // Parameters and running statistics (the buffers are in the checkpoint too).
        CHECK(max_abs_diff(values(io::load_safetensors(synced.model_path)), a) < 2e-5f);
        // Each rank's own rows: other batch statistics, another model (on more than one rank).
        const float d = max_abs_diff(values(io::load_safetensors(local.model_path)), a);
        if (w.size() > 1) CHECK(d > 1e-3f);
        else CHECK(d == 0.f);
    }
    // Synchronised BatchNorm needs a row of every batch on every rank.
    if (w.size() > 1) {
        train::TrainConfig bad = config("bad", w, true);
        bad.batch_size = 1;
        train::Trainer t(bad, log);
        CHECK_THROWS_WITH_AS(t.start(), doctest::Contains("--sync-batchnorm"), Error);
    }
}

TEST_CASE("check_same_on_all_ranks: a rank whose tensors differ stops every rank with the ranks named") {
    const dist::Comm& w = world();
    const Tensor t = from_vector(std::vector<float>{1.f, 2.f, 3.f}, Shape{3});
    CHECK_NOTHROW(train::check_same_on_all_ranks(w, {{"t", t}}, "the test tensors"));
    if (w.size() == 1) return;
    const Tensor u = from_vector(std::vector<float>{1.f, 2.f, w.rank() == 1 ? 3.5f : 3.f}, Shape{3});
    try {
        train::check_same_on_all_ranks(w, {{"t", u}}, "the test tensors");
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(std::string(e.what()).find("the test tensors differ between the ranks: rank(s) 1") != std::string::npos);
    }
    CHECK(train::digest({{"t", t}}) != train::digest({{"t", from_vector(std::vector<float>{1.f, 2.f, 4.f}, Shape{3})}}));
}

TEST_CASE("run_evaluation on the ranks: the one-process results, bit for bit, files and all") {
    set_num_threads(1);  // the same arithmetic in every process
    const dist::Comm& w = world();
    TempDir dir("dp-eval");
    write_fake_mnist(dir.path(), 10, 7, 28, false);
    models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini.model.safetensors"), "vgg-mini");
    const io::Dataset test = io::load_dataset("fashion-mnist", io::Split::Test, dir.path());
    explain::EvaluationPlan plan;
    plan.model = ck.model;
    plan.inputs = test.images;
    plan.labels = test.labels.to_vector<int32_t>();
    plan.methods = {"saliency", "lrp:epsilon-plus-flat", "occlusion:window=7,stride=7"};
    plan.preset = explain::PresetOptions::for_normalization({0.f}, {1.f});
    plan.options.metrics = {"aopc", "deletion", "insertion", "randomisation", "sensitivity", "conservation"};
    plan.options.batch = 2;  // 4 batches, the last of one image: ranks with 2 and 2, or 3 and 1 of them
    plan.options.steps = 3;
    plan.options.aopc_steps = 3;
    plan.options.sensitivity_samples = 2;
    plan.options.seed = 5;
    std::vector<int64_t> seen;
    const explain::EvaluationResults ranks = explain::run_evaluation(
        plan, [&](const explain::EvaluationProgress& p) { seen.push_back(p.images); }, &w);
    const explain::EvaluationResults one = explain::run_evaluation(plan, {}, &dist::self());
    // Progress counts every rank's images, after each round of P batches.
    REQUIRE_FALSE(seen.empty());
    CHECK(seen.back() == 7);
    CHECK(seen.size() == static_cast<size_t>((4 + w.size() - 1) / w.size()));
    CHECK(ranks.predicted == one.predicted);
    CHECK(ranks.targets == one.targets);
    CHECK(ranks.correct == one.correct);
    CHECK(ranks.canonizer_note == one.canonizer_note);
    CHECK(explain::results_csv(ranks) == explain::results_csv(one));
    CHECK(explain::per_image_csv(ranks) == explain::per_image_csv(one));
    CHECK(explain::curves_csv(ranks) == explain::curves_csv(one));
    const auto plots_a = explain::render_plots(ranks), plots_b = explain::render_plots(one);
    REQUIRE(plots_a.size() == plots_b.size());
    for (size_t i = 0; i < plots_a.size(); ++i) CHECK(plots_a[i].svg == plots_b[i].svg);
    for (size_t m = 0; m < one.methods.size(); ++m) {
        CAPTURE(one.methods[m].spec.text);
        CHECK(ranks.methods[m].values == one.methods[m].values);
        REQUIRE(ranks.methods[m].randomisation.size() == one.methods[m].randomisation.size());
        for (size_t k = 0; k < one.methods[m].randomisation.size(); ++k)
            CHECK(ranks.methods[m].randomisation[k].spearman == one.methods[m].randomisation[k].spearman);
    }
}

TEST_CASE("explain_batch on the ranks: the one-process run's maps and logits at the same batch size") {
    set_num_threads(1);
    const dist::Comm& w = world();
    Generator g(9);
    auto model = models::make_model("vgg-mini", {1, 12, 5}, g);
    explain::ExplainInputs in;
    in.raw = uniform(Shape{5, 1, 12, 12}, 0.f, 1.f, g);
    in.normalized = in.raw;
    for (int i = 0; i < 5; ++i) in.names.push_back("input " + std::to_string(i));
    in.labels.assign(5, -1);
    in.class_names = {"a", "b", "c", "d", "e"};
    in.mean = {0.f};
    in.stddev = {1.f};
    const explain::Target target = explain::Target::parse("pred", in.class_names);
    const std::vector<explain::MethodSpec> specs = {explain::parse_method("saliency"),
                                                    explain::parse_method("lrp:epsilon-plus-flat"),
                                                    explain::parse_method("gradcam"),
                                                    explain::parse_method("occlusion:window=4,stride=4")};
    const explain::PresetOptions preset = explain::preset_options(in);
    std::ostringstream log;
    // Batches of 2: [0, 1], [2, 3], [4]; on 2 ranks the first and third on rank 0.
    const explain::BatchExplanation ranks =
        explain::explain_batch(*model, in, target, specs, preset, Device::cpu(), log, 2, &w);
    const explain::BatchExplanation one =
        explain::explain_batch(*model, in, target, specs, preset, Device::cpu(), log, 2, &dist::self());
    CHECK(ranks.logits.shape() == one.logits.shape());
    CHECK(ranks.logits.to_vector<float>() == one.logits.to_vector<float>());
    CHECK(ranks.classes == one.classes);
    CHECK(ranks.canonizer_note == one.canonizer_note);
    REQUIRE(ranks.maps.size() == one.maps.size());
    for (size_t k = 0; k < specs.size(); ++k) {
        CAPTURE(specs[k].text);
        CHECK(ranks.maps[k].first.text == one.maps[k].first.text);
        CHECK(ranks.maps[k].second.map.shape() == one.maps[k].second.map.shape());
        CHECK(ranks.maps[k].second.map.to_vector<float>() == one.maps[k].second.map.to_vector<float>());
        CHECK(ranks.maps[k].second.is_signed == one.maps[k].second.is_signed);
        CHECK(ranks.maps[k].second.note == one.maps[k].second.note);
        CHECK(ranks.maps[k].second.layer == one.maps[k].second.layer);
    }
    // In batches, each batch its own trace: the maps of one trace of all five, up to float rounding.
    const explain::BatchExplanation whole =
        explain::explain_batch(*model, in, target, specs, preset, Device::cpu(), log, 0, &dist::self());
    CHECK(whole.classes == one.classes);
    for (size_t k = 0; k < specs.size(); ++k) {
        CAPTURE(specs[k].text);
        const auto a = whole.maps[k].second.map.to_vector<float>(), b = one.maps[k].second.map.to_vector<float>();
        CHECK(max_abs_diff(a, b) <= 1e-5f * std::max(1.f, max_abs(a)));
    }
}
