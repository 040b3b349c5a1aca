// The `glassbox` program: one sub-command per job. Every failure ends here as
// one line on stderr, "glassbox: error: ...", and a non-zero exit status: 2 for
// a command line that does not parse (CLI11's errors reworded to the same form),
// 1 for everything else (bad files, failed writes, out of memory). Nothing may
// escape as an uncaught exception (an abort with a core dump). Started by an MPI
// launcher (mpirun -n P glassbox ...), the ranks run the command together
// (core/distributed.h); a rank that fails prints its error with its rank and
// ends every rank (MPI_Abort), so a job never hangs on a dead rank.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>
#include <new>

#include "cli/commands.h"
#include "core/distributed.h"
#include "core/error.h"

namespace {

// The sub-command a usage error belongs to, for the "see --help" hint.
std::string help_hint(const CLI::App& app) {
    for (const CLI::App* sub : app.get_subcommands())
        if (sub->parsed()) return "glassbox " + sub->get_name() + " --help";
    return "glassbox --help";
}

int fail(const std::string& message, int code) {
    gb::dist::fail_job(message, code);  // under MPI: reported with the rank, every rank ended; no return
    std::cerr << "glassbox: error: " << message << "\n";
    return code;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        gb::dist::init(&argc, &argv);
    } catch (const std::exception& e) {
        return fail(e.what(), 1);
    }
    // The ranks of an MPI job run the same command: rank 0 alone prints (notes, progress, results). Errors
    // come from any rank (dist::fail_job writes to stderr itself). Only the commands that share their work
    // between ranks run on more than one; the others would each do the whole job and write the same files.
    if (gb::dist::world().size() > 1) {
        const std::string command = argc > 1 ? argv[1] : "";
        if (command != "train" && command != "evaluate" && command != "explain" && command != "info" &&
            command.rfind("-", 0) != 0)
            return fail("glassbox " + command + " does not share its work between processes: run it without " +
                            "mpirun (train, evaluate and explain do)",
                        1);
        if (!gb::dist::world().is_root()) {
            std::cout.rdbuf(nullptr);
            std::cerr.rdbuf(nullptr);
        }
    }
    CLI::App app{"glassbox: train and explain small CNNs with native LRP, Grad-CAM and gradient methods"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string(GB_VERSION));
    gb::cli::add_info_command(app);
    gb::cli::add_train_command(app);
    gb::cli::add_eval_command(app);
    gb::cli::add_explain_command(app);
    gb::cli::add_evaluate_command(app);
    gb::cli::add_visualize_command(app);
    gb::cli::add_counterfactual_command(app);
    gb::cli::add_distill_command(app);
    gb::cli::add_intervene_command(app);
    gb::cli::add_prune_command(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::RuntimeError& e) {
        return e.get_exit_code();  // a command's own failure status (info's self-check), already reported
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
        return fail(std::string(e.what()) + " (see '" + help_hint(app) + "')", 2);
    } catch (const gb::Error& e) {
        return fail(e.what(), 1);
    } catch (const std::bad_alloc&) {
        return fail("out of memory (the model, batch or input is too large for this machine)", 1);
    } catch (const std::filesystem::filesystem_error& e) {
        return fail(e.what(), 1);
    } catch (const std::exception& e) {
        return fail(std::string("internal error (please report it): ") + e.what(), 1);
    }
    return 0;
}
