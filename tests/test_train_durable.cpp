// Durable runs: atomic + fsync'ed writes that clean up after themselves, mid-epoch
// resume state (--save-every) that continues bit for bit (also after kill -9 of the
// real program at a random moment), non-finite weights never saved, and a failed
// write (file too large, disk full) that says which checkpoint files are current.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <sstream>
#include <thread>

#include "cli_run.h"
#include "idx_writer.h"
#include "io/file_util.h"
#include "io/safetensors.h"
#include "temp_dir.h"
#include "testing.h"
#include "train_config.h"
#include "train/trainer.h"

using namespace gb;
using namespace gb::testing;
namespace fs = std::filesystem;

namespace {

// The pid of a process that has exited and been reaped (so kill(pid, 0) fails with ESRCH).
pid_t dead_pid() {
    const pid_t p = fork();
    REQUIRE(p >= 0);
    if (p == 0) _exit(0);
    int status = 0;
    waitpid(p, &status, 0);
    return p;
}

std::vector<std::string> temporaries(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().find(".tmp.") != std::string::npos) out.push_back(e.path().string());
    return out;
}

// Every tensor (names, dtypes, shapes and bytes) of two safetensors files is identical.
void check_same_tensors(const std::string& a_path, const std::string& b_path) {
    const io::SafeTensors a = io::load_safetensors(a_path), b = io::load_safetensors(b_path);
    REQUIRE(a.tensors.size() == b.tensors.size());
    for (size_t i = 0; i < a.tensors.size(); ++i) {
        CAPTURE(a.tensors[i].first);
        REQUIRE(a.tensors[i].first == b.tensors[i].first);
        const Tensor& x = a.tensors[i].second;
        const Tensor& y = b.tensors[i].second;
        REQUIRE(x.dtype() == y.dtype());
        REQUIRE(x.shape() == y.shape());
        CHECK(std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) == 0);
    }
}

std::string meta(const std::string& path, const std::string& key) {
    const io::SafeTensors f = io::load_safetensors(path);
    auto it = f.metadata.find(key);
    return it == f.metadata.end() ? "" : it->second;
}

// metrics.csv without the timing columns (seconds, images per second), which no two runs share.
std::string metrics_without_timings(const std::string& path) {
    std::istringstream in(read_text(path));
    std::string line, out;
    while (std::getline(in, line)) {
        std::istringstream cells(line);
        std::string cell;
        for (int k = 0; k < 6 && std::getline(cells, cell, ','); ++k) out += cell + ",";
        out += "\n";
    }
    return out;
}

train::TrainConfig small_run(const std::string& data_dir, const std::string& out) {
    return small_train_config(data_dir, out, 8, 4);
}

// Restores a resource limit and the SIGXFSZ disposition when the test leaves.
struct FileSizeLimit {
    explicit FileSizeLimit(rlim_t bytes) {
        getrlimit(RLIMIT_FSIZE, &saved);
        old_handler = signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG instead of killing us
        rlimit r = saved;
        r.rlim_cur = bytes;
        REQUIRE(setrlimit(RLIMIT_FSIZE, &r) == 0);
    }
    ~FileSizeLimit() {
        setrlimit(RLIMIT_FSIZE, &saved);
        signal(SIGXFSZ, old_handler);
    }
    rlimit saved{};
    sighandler_t old_handler;
};

}  // namespace

TEST_CASE("write_file_atomic: a failing writer, an unmovable target and a too-large file leave no temporary") {
    TempDir dir("atomic");
    const std::string target = dir.path("a.bin");
    io::write_file_atomic(target, [](std::ostream& o) { o << "old"; });
    CHECK(read_text(target) == "old");

    // The writer throws half-way: the target keeps its old content, no temporary stays.
    CHECK_THROWS_WITH_AS(io::write_file_atomic(target,
                                               [](std::ostream& o) {
                                                   o << "half";
                                                   throw Error("writer gave up");
                                               }),
                         doctest::Contains("writer gave up"), Error);
    CHECK(read_text(target) == "old");
    CHECK(temporaries(dir.path()).empty());

    // The target is a non-empty folder: the rename fails, with the system's reason and the path.
    fs::create_directories(dir.path("folder/inside"));
    CHECK_THROWS_WITH_AS(io::write_file_atomic(dir.path("folder"), [](std::ostream& o) { o << "x"; }),
                         doctest::Contains((dir.path("folder") + "': ").c_str()), Error);
    CHECK(temporaries(dir.path()).empty());

    // The file system refuses the bytes (here a file-size limit: EFBIG, as a full disk gives ENOSPC).
    {
        FileSizeLimit limit(1000);
        CHECK_THROWS_WITH_AS(
            io::write_file_atomic(target, [](std::ostream& o) { o << std::string(100000, 'x'); }),
            doctest::Contains((std::string("failed: ") + std::strerror(EFBIG)).c_str()), Error);
    }
    CHECK(read_text(target) == "old");
    CHECK(temporaries(dir.path()).empty());
}

TEST_CASE("write_file_atomic: stale temporaries of dead processes are removed, others kept") {
    TempDir dir("stale");
    const std::string target = dir.path("model.safetensors");
    const pid_t dead = dead_pid();
    const std::string stale = target + ".tmp." + std::to_string(dead);
    const std::string live = target + ".tmp." + std::to_string(getppid());              // a running process
    const std::string other = dir.path("resume.safetensors.tmp." + std::to_string(dead));  // another target's
    const std::string odd = target + ".tmp.12ab";
    for (const auto& p : {stale, live, other, odd}) write_bytes(p, {1, 2, 3});
    io::write_file_atomic(target, [](std::ostream& o) { o << "new"; });
    CHECK(read_text(target) == "new");
    CHECK_FALSE(fs::exists(stale));
    CHECK(fs::exists(live));
    CHECK(fs::exists(other));
    CHECK(fs::exists(odd));
    CHECK(io::remove_stale_temporaries(dir.path("resume.safetensors")) == 1);
    CHECK_FALSE(fs::exists(other));
}

TEST_CASE("training: mid-epoch resume state (save_every) continues bit for bit") {
    TempDir dir("midepoch");
    write_fake_mnist(dir.path(), 60, 16, 8, false);  // 8 batches per epoch (the last one of 4)
    std::ostringstream log;
    const train::TrainResult full = train::run_training(small_run(dir.path(), dir.path("full")), log);
    REQUIRE(full.history.size() == 2);

    // A crash in epoch 2 after batch 5 (0-based 4), with resume state every 2 batches: batch 4 is the last saved.
    train::TrainConfig part = small_run(dir.path(), dir.path("split"));
    part.save_every = 2;
    part.after_step = [](layers::Layer&, int64_t epoch, int64_t batch) {
        if (epoch == 1 && batch == 4) throw std::runtime_error("simulated crash");
    };
    CHECK_THROWS_WITH(train::run_training(part, log), "simulated crash");
    const std::string resume = dir.path("split/resume.safetensors");
    CHECK(meta(resume, "train.epoch") == "1");
    CHECK(meta(resume, "train.batch") == "4");
    CHECK(meta(resume, "train.steps") == "12");  // 8 + 4 optimizer steps
    CHECK(meta(dir.path("split/model.safetensors"), "train.epoch") == "1");

    train::TrainConfig cont = small_run(dir.path(), dir.path("split"));
    cont.resume = resume;
    cont.save_every = 3;  // a different save interval is fine; a different batch size is not (below)
    const train::TrainResult r = train::run_training(cont, log);
    CHECK(log.str().find("resume: " + resume + " at batch 4 of epoch 2") != std::string::npos);
    REQUIRE(r.history.size() == 2);
    // The epoch's running sums were restored: its metrics are the uninterrupted run's, exactly.
    CHECK(r.history[1].train_loss == full.history[1].train_loss);
    CHECK(r.history[1].train_acc == full.history[1].train_acc);
    CHECK(r.history[1].test_loss == full.history[1].test_loss);
    check_same_tensors(full.model_path, r.model_path);
    check_same_tensors(full.resume_path, r.resume_path);
    CHECK(meta(r.resume_path, "rng.offset") == meta(full.resume_path, "rng.offset"));
    CHECK(meta(r.resume_path, "train.batch") == "0");

    // Continuing an epoch with another batch size would see other batches: refused with the reason.
    train::TrainConfig part2 = small_run(dir.path(), dir.path("split2"));
    part2.save_every = 2;
    part2.after_step = part.after_step;
    CHECK_THROWS(train::run_training(part2, log));
    train::TrainConfig other = small_run(dir.path(), dir.path("split2"));
    other.resume = dir.path("split2/resume.safetensors");
    other.batch_size = 4;
    CHECK_THROWS_WITH_AS(train::run_training(other, log), doctest::Contains("saved in the middle of an epoch"), Error);

    // At an epoch end another seed or batch size is allowed, and said.
    train::TrainConfig more = small_run(dir.path(), dir.path("full"));
    more.resume = full.resume_path;
    more.epochs = 3;
    more.seed = 99;
    std::ostringstream note;
    train::run_training(more, note);
    CHECK(note.str().find("resume: note: --seed 99 differs from the run's") != std::string::npos);
    CHECK(note.str().find("--batch-size") == std::string::npos);
}

TEST_CASE("training: weights that turn non-finite at an epoch's last step are never saved") {
    TempDir dir("nonfinite");
    write_fake_mnist(dir.path(), 40, 10, 8, false);  // 5 batches per epoch
    std::ostringstream log;
    auto poison_at = [](int64_t at_epoch, int64_t at_batch) {
        return [=](layers::Layer& model, int64_t epoch, int64_t batch) {
            if (epoch != at_epoch || batch != at_batch) return;
            // What a huge step does to a weight while the loss of that step was still finite.
            Tensor w = model.named_parameters().front().second;
            w.data<float>()[0] = std::numeric_limits<float>::infinity();
        };
    };

    train::TrainConfig c = small_run(dir.path(), dir.path("run"));
    c.after_step = poison_at(1, 4);  // epoch 2's last batch: the loss of every batch was finite
    const std::string model = dir.path("run/model.safetensors"), resume = dir.path("run/resume.safetensors");
    std::string message;
    try {
        train::run_training(c, log);
    } catch (const Error& e) {
        message = e.what();
    }
    MESSAGE(message);
    CHECK(message.find("the model's 'features.0.weight' became NaN or infinite at the end of epoch 2 (batch 5, its "
                       "last)") != std::string::npos);
    CHECK(message.find(model + " is from epoch 1, " + resume + " is from epoch 1 (resume with it") !=
          std::string::npos);
    CHECK(meta(model, "train.epoch") == "1");
    CHECK(meta(resume, "train.epoch") == "1");
    for (const auto& path : {model, resume})
        for (const auto& [n, t] : io::load_safetensors(path).tensors)
            if (t.dtype() == DType::Float32)
                for (float v : t.to_vector<float>()) REQUIRE(std::isfinite(v));
    CHECK(temporaries(dir.path("run")).empty());

    // Mid-epoch: the save after the poisoned step is refused; the one before stays the last good one.
    train::TrainConfig m = small_run(dir.path(), dir.path("mid"));
    m.save_every = 2;
    m.after_step = poison_at(0, 3);  // batch 4: a save point
    CHECK_THROWS_WITH_AS(train::run_training(m, log), doctest::Contains("at epoch 1, batch 4"), Error);
    CHECK(meta(dir.path("mid/resume.safetensors"), "train.batch") == "2");
    CHECK_FALSE(fs::exists(dir.path("mid/model.safetensors")));
}

TEST_CASE("training: a failed write says which files are current (file too large; a full tmpfs when root)") {
    TempDir dir("fullwrite");
    write_fake_mnist(dir.path(), 40, 10, 8, false);
    std::ostringstream log;
    const train::TrainResult full = train::run_training(small_run(dir.path(), dir.path("full")), log);
    const auto model_bytes = fs::file_size(full.model_path), resume_bytes = fs::file_size(full.resume_path);
    REQUIRE(resume_bytes > model_bytes + 8192);

    // Epoch 2's model.safetensors fits under the limit, its resume.safetensors does not.
    train::TrainConfig c = small_run(dir.path(), dir.path("limited"));
    c.stop_after = 1;
    train::run_training(c, log);
    train::TrainConfig more = small_run(dir.path(), dir.path("limited"));
    more.resume = dir.path("limited/resume.safetensors");
    std::string message;
    {
        FileSizeLimit limit((model_bytes + resume_bytes) / 2);
        try {
            train::run_training(more, log);
        } catch (const Error& e) {
            message = e.what();
        }
    }
    MESSAGE(message);
    CHECK(message.find("writing " + dir.path("limited/resume.safetensors") + " failed (") == 0);
    CHECK(message.find(std::strerror(EFBIG)) != std::string::npos);
    const std::string current = dir.path("limited/model.safetensors") + " is from epoch 2, " +
                                dir.path("limited/resume.safetensors") + " is from epoch 1 (resume with it";
    CHECK(message.find(current) != std::string::npos);
    CHECK(temporaries(dir.path("limited")).empty());
    // And resuming from it gives the uninterrupted run.
    more.resume = dir.path("limited/resume.safetensors");
    train::run_training(more, log);
    check_same_tensors(full.model_path, dir.path("limited/model.safetensors"));

    // A real full disk: a tmpfs with room for epoch 1 and epoch 2's model, not for its resume file.
    if (geteuid() != 0) {
        MESSAGE("not root: the full-tmpfs part is skipped");
        return;
    }
    const std::string mnt = dir.path("tmpfs");
    fs::create_directories(mnt);
    const uint64_t page = 4096;
    auto pages = [&](uint64_t bytes) { return (bytes + page - 1) / page * page; };
    // Peak of epoch 2's model write: two models, one resume, the metrics files; then the resume write needs
    // one model and two resume files. A size half-way fails the second only.
    const uint64_t fits = 2 * pages(model_bytes) + pages(resume_bytes) + 4 * page;
    const uint64_t size = fits + (pages(resume_bytes) - pages(model_bytes)) / 2 / page * page;
    const std::string opts = "size=" + std::to_string(size);
    if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
        MESSAGE("mounting a tmpfs failed (" << std::strerror(errno) << "): the full-tmpfs part is skipped");
        return;
    }
    struct Unmount {
        std::string path;
        ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
    } unmount{mnt};
    train::TrainConfig t = small_run(dir.path(), mnt);
    message.clear();
    try {
        train::run_training(t, log);
    } catch (const Error& e) {
        message = e.what();
    }
    MESSAGE(message);
    CHECK(message.find("writing " + mnt + "/resume.safetensors failed (") == 0);
    CHECK(message.find(std::strerror(ENOSPC)) != std::string::npos);
    CHECK(message.find(mnt + "/model.safetensors is from epoch 2, " + mnt + "/resume.safetensors is from epoch 1") !=
          std::string::npos);
    CHECK(temporaries(mnt).empty());
}

TEST_CASE("cli: kill -9 at a random step, --resume, and the final model is the uninterrupted one bit for bit") {
    TempDir dir("kill9");
    write_fake_mnist(dir.path(), 200, 20, 8, false);  // 25 batches of 8 per epoch, 3 epochs
    const std::vector<std::string> opts = {"train", "--data-dir", dir.path(), "--epochs", "3", "--batch-size", "8",
                                           "--lr", "0.05", "--seed", "9", "--crop-padding", "1", "--hflip",
                                           "--save-every", "1", "--threads", "1", "--test-limit", "20"};
    auto joined = [&](const std::string& extra) {
        std::string s;
        for (const auto& o : opts) s += o + " ";
        return s + extra;
    };
    const auto t0 = std::chrono::steady_clock::now();
    const Run full = run(joined("--out " + dir.path("full")));
    const double full_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE(full.code == 0);

    uint64_t seed = std::random_device{}();
    if (const char* s = std::getenv("GB_KILL_SEED")) seed = std::strtoull(s, nullptr, 10);
    MESSAGE("kill seed " << seed << " (GB_KILL_SEED=" << seed << " repeats this run); uninterrupted run "
                         << full_seconds << " s");
    std::mt19937_64 rng(seed);

    const std::string out = dir.path("killed");
    const std::string resume = out + "/resume.safetensors";
    bool killed = false;
    for (int attempt = 0; attempt < 4 && !killed; ++attempt) {
        fs::remove_all(out);
        std::vector<std::string> args = opts;
        args.insert(args.begin(), GB_CLI_PATH);
        args.push_back("--out");
        args.push_back(out);
        // Everything the child needs is prepared before fork: it only redirects and execs.
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        const std::string log_path = dir.path("killed.log");
        const auto start = std::chrono::steady_clock::now();
        const pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(log, 1);
            dup2(log, 2);
            execv(argv[0], argv.data());
            _exit(127);
        }
        // Wait for the first resume state (written after batch 1), then kill at a random later moment.
        while (!fs::exists(resume) && std::chrono::steady_clock::now() - start < std::chrono::seconds(120))
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        const double first = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double span = std::max(0.01, (full_seconds - first) * 0.8) / (1 << attempt);
        const double delay = std::uniform_real_distribution<double>(0.0, span)(rng);
        std::this_thread::sleep_for(std::chrono::duration<double>(delay));
        ::kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        MESSAGE("attempt " << attempt + 1 << ": first resume state after " << first << " s, kill " << delay
                           << " s later: " << std::string(killed ? "killed" : "had already finished"));
    }
    REQUIRE(killed);
    const std::string moment = "epoch " + meta(resume, "train.epoch") + ", batch " + meta(resume, "train.batch") +
                               " (" + meta(resume, "train.steps") + " steps)";
    MESSAGE("resume.safetensors after the kill: " << moment << "; temporaries left: " << temporaries(out).size());
    // "at epoch E, batch B" for a mid-epoch state, "after epoch E" when the kill fell after an epoch-end save.
    const std::string batch = meta(resume, "train.batch");
    const bool at_batch = !batch.empty() && batch != "0";

    const Run again = run(joined("--out " + out + " --resume " + resume));
    INFO(again.out);
    REQUIRE(again.code == 0);
    CHECK(again.out.find("resume: " + resume + (at_batch ? " at " : " after epoch ")) != std::string::npos);
    check_same_tensors(dir.path("full/model.safetensors"), out + "/model.safetensors");
    check_same_tensors(dir.path("full/resume.safetensors"), resume);
    CHECK(metrics_without_timings(out + "/metrics.csv") == metrics_without_timings(dir.path("full/metrics.csv")));
    CHECK(metrics_without_timings(out + "/metrics.csv").size() > 50);
    // A write the kill interrupted left `<name>.tmp.<pid>`; the resumed run's writes removed it.
    CHECK(temporaries(out).empty());
}

TEST_CASE("cli: --save-every is range-checked") {
    const Run neg = run("train --save-every -1");
    CHECK(neg.code == 2);
    CHECK(neg.out.find("--save-every: -1 is out of range (expected an integer in [0, 1000000])") != std::string::npos);
    const Run big = run("train --save-every 1000001");
    CHECK(big.code == 2);
}
