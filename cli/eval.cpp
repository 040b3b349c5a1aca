// `glassbox eval`: accuracy, per-class accuracy and the confusion matrix of a checkpoint.
// In order: the dataset split (cut to --limit), then the checkpoint (glassbox's, or a plain state dict whose model is
// --model or inferred from its tensors, for the data's channels, size and classes), a check that its classes and
// channels match the data, and train::evaluate with the checkpoint's normalisation (raw [0, 1] pixels, with a note,
// when it records none). Progress and notes go to stderr; the results to stdout. Writes no files.
#include <CLI/CLI.hpp>

#include <cmath>
#include <iomanip>
#include <iostream>

#include "cli/commands.h"
#include "cli/options.h"
#include "io/dataset.h"
#include "models/checkpoint.h"
#include "models/registry.h"
#include "train/trainer.h"

namespace gb::cli {

void add_eval_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("eval", "Evaluate a checkpoint on a dataset split");
    struct Opts {
        std::string checkpoint, data = "fashion-mnist", data_dir, split = "test", model;
        int64_t batch_size = 256, limit = 0;
        ComputeOptions compute;
    };
    auto o = std::make_shared<Opts>();
    add_checkpoint_option(*cmd, o->checkpoint, /*required=*/true);
    add_data_options(*cmd, o->data, o->data_dir);
    add_split_option(*cmd, o->split);
    add_model_option(*cmd, o->model);
    add_batch_size_option(*cmd, o->batch_size);
    add_limit_option(*cmd, o->limit, "Evaluate the first N images only (0: all)");
    add_compute_options(*cmd, o->compute);
    cmd->callback([o] {
        const Device device = o->compute.apply();
        const io::Dataset data =
            io::load_dataset(o->data, o->split == "train" ? io::Split::Train : io::Split::Test, o->data_dir).head(o->limit);
        models::ModelOptions mo{data.channels(), data.height(), data.classes()};
        models::Checkpoint ck = models::load_checkpoint(o->checkpoint, o->model, &mo);
        const models::VggConfig& cfg = ck.model->config();
        GB_CHECK(cfg.num_classes == data.classes() && cfg.in_channels == data.channels(), o->checkpoint, ": the model ('",
                 cfg.name, "') takes ", cfg.in_channels, "-channel images in ", cfg.num_classes, " classes; ", o->data,
                 " has ", data.channels(), " channels and ", data.classes(), " classes");
        ck.model->to(device);
        train::LoaderOptions lo;
        lo.batch_size = o->batch_size;
        const auto& meta = ck.metadata();
        if (!models::read_normalization(meta, o->checkpoint, lo.mean, lo.stddev)) {
            std::cerr << "note: " << o->checkpoint << " records no input normalisation; evaluating on raw [0, 1] pixels\n";
        }
        const train::EvalResult r = train::evaluate(*ck.model, data, lo, device, &std::cerr);
        std::cout << "checkpoint: " << o->checkpoint << " (" << ck.model->describe() << ")\n";
        std::cout << "data: " << o->data << " " << o->split << ", " << r.confusion.total() << " images\n";
        std::cout << std::fixed << std::setprecision(2) << "accuracy: " << 100 * r.confusion.accuracy()
                  << "%  loss: " << std::setprecision(4) << r.loss << "\n\nper class:\n";
        const auto pc = r.confusion.per_class_accuracy();
        for (size_t k = 0; k < pc.size(); ++k)
            std::cout << "  " << std::setw(2) << k << " " << std::left << std::setw(14) << data.class_names[k]
                      << std::right << std::setprecision(2) << (std::isnan(pc[k]) ? 0.0 : 100 * pc[k]) << "%\n";
        std::cout << "\nconfusion matrix (rows: true class, columns: predicted):\n"
                  << r.confusion.markdown(data.class_names);
    });
}

}  // namespace gb::cli
