// `glassbox` started by an MPI launcher. In an MPI build (GB_MPIEXEC: the launcher CMake found), `mpirun -n 2
// glassbox train` against `glassbox train` on the same data and global batch: the same parameters within float
// tolerance (the reference is the one-process run; only the order of the gradient sums differs), the same
// parameters bit for bit from run to run, --resume with another number of ranks, --sync-batchnorm, evaluate and
// explain writing the one-process run's files, rank 0 alone printing, a failing job that ends with its rank's
// message instead of hanging, and ranks that run different programs refused. In a build without MPI, a process that an MPI launcher started is refused
// with a clear error (it would run the whole job once per rank).
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cli_run.h"
#include "idx_writer.h"
#include "io/safetensors.h"
#include "temp_dir.h"

using namespace gb::testing;

#ifdef GB_MPIEXEC

namespace {

std::vector<float> parameters(const std::string& path) {
    std::vector<float> all;
    for (const auto& [name, t] : gb::io::load_safetensors(path).tensors)
        for (float v : t.to_vector<float>()) all.push_back(v);
    return all;
}

// `GB_MPIEXEC launch`, stdout and stderr together.
Run run_launcher(const std::string& launch) {
    const std::string cmd = std::string(GB_MPIEXEC) + " " + launch + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    std::string out;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    const int status = pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Each of `files` is the same in folders a and b, byte for byte.
void check_same_files(const std::string& a, const std::string& b, const std::vector<const char*>& files) {
    for (const char* f : files) {
        CAPTURE(f);
        CHECK(read_text(a + "/" + f) == read_text(b + "/" + f));
    }
}

// `mpirun -n ranks glassbox args`.
Run run_ranks(int ranks, const std::string& args) {
    return run_launcher("-n " + std::to_string(ranks) + " " + GB_CLI_PATH + " " + args);
}

}  // namespace

TEST_CASE("cli: mpirun -n 2 glassbox train is the one-process run, bit for bit at fixed P") {
    TempDir dir("cli-dp");
    write_fake_mnist(dir.path(), 100, 40, 12, false);
    const std::string common = "train --model vgg-mini --data-dir " + dir.path() +
                               " --epochs 2 --batch-size 24 --lr 0.05 --seed 7 --crop-padding 1 --hflip --threads 1";
    const Run one = run(common + " --out " + dir.path("one"));
    REQUIRE_MESSAGE(one.code == 0, one.out);
    const Run two = run_ranks(2, common + " --out " + dir.path("two"));
    REQUIRE_MESSAGE(two.code == 0, two.out);
    CHECK(two.out.find("data-parallel: 2 ranks") != std::string::npos);
    // Rank 0 alone prints the paths.
    const std::string line = "metrics: " + dir.path("two/metrics.csv");
    const size_t at = two.out.find(line);
    CHECK(at != std::string::npos);
    CHECK(two.out.find(line, at + 1) == std::string::npos);
    const auto a = parameters(dir.path("one/model.safetensors")), b = parameters(dir.path("two/model.safetensors"));
    CHECK(max_abs_diff(a, b) < 2e-5f);
    const Run again = run_ranks(2, common + " --out " + dir.path("again"));
    REQUIRE_MESSAGE(again.code == 0, again.out);
    CHECK(parameters(dir.path("again/model.safetensors")) == b);
    // --resume with another number of ranks: epoch 2 of the 2-rank run's resume file in one process.
    const Run half = run_ranks(2, common + " --stop-after 1 --out " + dir.path("half"));
    REQUIRE_MESSAGE(half.code == 0, half.out);
    const Run rest = run(common + " --resume " + dir.path("half/resume.safetensors") + " --out " + dir.path("half"));
    REQUIRE_MESSAGE(rest.code == 0, rest.out);
    CHECK(max_abs_diff(a, parameters(dir.path("half/model.safetensors"))) < 2e-5f);
}

TEST_CASE("cli: mpirun -n 2 glassbox train --sync-batchnorm is the one-process run of a BatchNorm model") {
    TempDir dir("cli-dp-bn");
    write_fake_mnist(dir.path(), 60, 20, 12, false);
    const std::string common = "train --model vgg-mini-bn --data-dir " + dir.path() +
                               " --epochs 1 --lr 0.05 --seed 3 --threads 1";
    const Run one = run(common + " --batch-size 16 --out " + dir.path("one"));
    REQUIRE_MESSAGE(one.code == 0, one.out);
    const Run two = run_ranks(2, common + " --batch-size 16 --sync-batchnorm --out " + dir.path("two"));
    REQUIRE_MESSAGE(two.code == 0, two.out);
    CHECK(max_abs_diff(parameters(dir.path("one/model.safetensors")), parameters(dir.path("two/model.safetensors"))) <
          2e-5f);
    // Batches of one image cannot give both ranks a row: refused before training, with the reason.
    const Run bad = run_ranks(2, common + " --sync-batchnorm --batch-size 1 --out " + dir.path("bad"));
    CHECK(bad.code != 0);
    CHECK_MESSAGE(bad.out.find("--sync-batchnorm on 2 ranks needs at least 2 images in every batch") != std::string::npos, bad.out);
}

TEST_CASE("cli: mpirun -n 2 glassbox evaluate writes the one-process run's files") {
    TempDir dir("cli-dp-eval");
    write_fake_mnist(dir.path(), 10, 7, 28, false);
    const std::string args = "evaluate --checkpoint " + data_file("vgg_mini.model.safetensors") +
                             " --model vgg-mini --data-dir " + dir.path() +
                             " --limit 7 --batch-size 2 --method saliency --method lrp:epsilon-plus-flat"
                             " --metric aopc --metric deletion --metric insertion --metric randomisation"
                             " --metric conservation --steps 3 --aopc-steps 3 --seed 5 --threads 1 --out ";
    const Run one = run(args + dir.path("one"));
    REQUIRE_MESSAGE(one.code == 0, one.out);
    const Run two = run_ranks(2, args + dir.path("two"));
    REQUIRE_MESSAGE(two.code == 0, two.out);
    CHECK(two.out.find("on 2 ranks") != std::string::npos);
    // Rank 0 alone prints the table and the files' line.
    const size_t at = two.out.find("written: ");
    CHECK(at != std::string::npos);
    CHECK(two.out.find("written: ", at + 1) == std::string::npos);
    check_same_files(dir.path("two"), dir.path("one"),
                     {"results.csv", "per_image.csv", "curves.csv", "deletion_curves.svg", "insertion_curves.svg",
                      "randomisation.svg"});
}

TEST_CASE("cli: mpirun -n 2 glassbox explain --index writes the one-process run's maps and pictures at one --batch-size") {
    TempDir dir("cli-dp-explain");
    write_fake_mnist(dir.path(), 10, 7, 28, false);
    const std::string args = "explain --checkpoint " + data_file("vgg_mini.model.safetensors") +
                             " --model vgg-mini --data-dir " + dir.path() +
                             " --index 0 1 2 3 4 --method lrp:epsilon-plus-flat --method gradcam --method saliency"
                             " --threads 1 --upscale 2 --batch-size 2 --out ";
    const Run one = run(args + dir.path("one"));
    REQUIRE_MESSAGE(one.code == 0, one.out);
    const Run two = run_ranks(2, args + dir.path("two"));
    REQUIRE_MESSAGE(two.code == 0, two.out);
    CHECK(two.out.find("on 2 ranks") != std::string::npos);
    const std::vector<const char*> files = {"lrp_epsilon-plus-flat.npy", "gradcam.npy", "saliency.npy",
                                            "input_4.png", "0_lrp_epsilon-plus-flat.png", "4_gradcam_overlay.png",
                                            "3_saliency.png", "report.html", "run.json"};
    check_same_files(dir.path("two"), dir.path("one"), files);
    // Without --batch-size the ranks take one batch each (3 and 2 inputs), and say which --batch-size gives the
    // same files in one process.
    const std::string plain = args.substr(0, args.find(" --batch-size"));
    const Run shared = run_ranks(2, plain + " --out " + dir.path("shared"));
    REQUIRE_MESSAGE(shared.code == 0, shared.out);
    CHECK(shared.out.find("5 inputs in batches of 3 on 2 ranks (the one-process run with --batch-size 3") !=
          std::string::npos);
    const Run three = run(plain + " --batch-size 3 --out " + dir.path("three"));
    REQUIRE_MESSAGE(three.code == 0, three.out);
    check_same_files(dir.path("shared"), dir.path("three"), files);
}

TEST_CASE("cli: ranks that run different programs are refused at start") {
    TempDir dir("cli-dp-programs");
    // A copy of the program with one byte more: it runs the same, but it is not the same file.
    const std::string other = dir.path("glassbox-other");
    std::filesystem::copy_file(GB_CLI_PATH, other);
    { std::ofstream(other, std::ios::app | std::ios::binary) << '\0'; }
    std::filesystem::permissions(other, std::filesystem::perms::owner_all);
    const Run r = run_launcher("-n 1 " + std::string(GB_CLI_PATH) + " info : -n 1 " + other + " info");
    CHECK(r.code != 0);
    CHECK_MESSAGE(r.out.find("the ranks of this job run different programs") != std::string::npos, r.out);
}

TEST_CASE("cli: a command that does not share its work is refused on more than one rank") {
    const Run r = run_ranks(2, "visualize --checkpoint " + data_file("vgg_mini.model.safetensors") + " --out unused");
    CHECK(r.code != 0);
    CHECK_MESSAGE(r.out.find("glassbox visualize does not share its work between processes") != std::string::npos,
                  r.out);
}

TEST_CASE("cli: a job whose ranks fail ends with the rank's message, not a hang") {
    TempDir dir("cli-dp-fail");
    const Run r = run_ranks(2, "train --model vgg-mini --data-dir " + dir.path("missing") + " --epochs 1 --out " +
                                   dir.path("out"));
    CHECK(r.code != 0);
    CHECK(r.out.find("glassbox: error: rank ") != std::string::npos);
    CHECK(r.out.find("of 2: ") != std::string::npos);
}

#else

TEST_CASE("cli: without MPI in the build, a process started by an MPI launcher is refused") {
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    const Run r = run("info");
    unsetenv("OMPI_COMM_WORLD_SIZE");
    CHECK(r.code == 1);
    CHECK(r.out.find("built without MPI") != std::string::npos);
    setenv("PMI_SIZE", "2", 1);
    setenv("GB_IGNORE_MPI_LAUNCHER", "1", 1);
    const Run accepted = run("info");
    unsetenv("PMI_SIZE");
    unsetenv("GB_IGNORE_MPI_LAUNCHER");
    CHECK_MESSAGE(accepted.code == 0, accepted.out);
}

#endif

TEST_CASE("cli: the build says whether it has MPI") {
    const Run r = run("info");
    REQUIRE_MESSAGE(r.code == 0, r.out);
#ifdef GB_MPIEXEC
    CHECK(r.out.find("MPI=ON") != std::string::npos);
#else
    CHECK(r.out.find("MPI=OFF") != std::string::npos);
#endif
}
