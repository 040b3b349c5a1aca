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
#include "core/parallel.h"
#include "io/dataset.h"
#include "models/checkpoint.h"
#include "models/registry.h"
#include "train/trainer.h"

namespace gb::cli {


void add_eval_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("eval", "Evaluate a checkpoint on a dataset split");
    struct Opts {
        std::string checkpoint, data = "fashion-mnist", data_dir, split = "test", model, device = "cpu";
        int64_t batch_size = 256, limit = 0;
        int threads = 0;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("--checkpoint", o->checkpoint, "A model.safetensors (or a plain PyTorch state dict saved with safetensors)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--data", o->data, "Dataset (as for train)")->capture_default_str();
    cmd->add_option("--data-dir", o->data_dir, "Where to look for the dataset");
    cmd->add_option("--split", o->split, "train or test")->capture_default_str()->check(CLI::IsMember({"train", "test"}));
    cmd->add_option("--model", o->model, "Model for a state dict without glassbox metadata (default: inferred from its tensors, e.g. a torchvision VGG): " + models::model_names_text());
    cmd->add_option("--batch-size", o->batch_size, "Batch size")->capture_default_str()->check(integer(1, kMaxBatch));
    cmd->add_option("--limit", o->limit, "Evaluate the first N images only (0: all)")->capture_default_str()->check(integer(0, kMaxCount));
    cmd->add_option("--device", o->device, "cpu or cuda[:N]")->capture_default_str();
    cmd->add_option("--threads", o->threads, "CPU threads (0: all cores)")->check(integer(0, kMaxThreads));
    cmd->callback([o] {
        if (o->threads > 0) set_num_threads(o->threads);
        const Device device = Device::parse(o->device);
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
