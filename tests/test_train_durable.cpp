// Durable runs: atomic + fsync'ed writes that clean up after themselves.
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

