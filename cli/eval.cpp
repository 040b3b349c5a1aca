// `glassbox eval`: accuracy, per-class accuracy and the confusion matrix of a checkpoint.
// A tree written by `glassbox distill` (tree.safetensors, cart.safetensors; told apart by the file's metadata
// "format") is scored on the split's images normalised as it records, by its predictions (the soft tree's most
// probable leaf). Otherwise, in order: the dataset split (cut to --limit), then the checkpoint (glassbox's, or a plain state dict whose model is
// --model or inferred from its tensors, for the data's channels, size and classes), a check that its classes and
// channels match the data, and train::evaluate with the checkpoint's normalisation (raw [0, 1] pixels, with a note,
// when it records none). Progress and notes go to stderr; the results to stdout. Writes no files.
#include <CLI/CLI.hpp>

#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/options.h"
#include "explain/inputs.h"
#include "io/dataset.h"
#include "models/checkpoint.h"
#include "models/registry.h"
#include "models/cart.h"
#include "models/soft_tree.h"
#include "train/distill.h"
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
            io::load_dataset(o->data, io::split_named(o->split), o->data_dir).head(o->limit);
        io::SafeTensors file = io::load_safetensors(o->checkpoint);
        auto report = [&](const std::string& what, const train::ConfusionMatrix& m, const std::string& extra) {
            std::cout << "checkpoint: " << o->checkpoint << " (" << what << ")\n";
            std::cout << "data: " << o->data << " " << o->split << ", " << m.total() << " images\n";
            std::cout << std::fixed << std::setprecision(2) << "accuracy: " << 100 * m.accuracy() << "%" << extra
                      << "\n\nper class:\n";
            const auto pc = m.per_class_accuracy();
            for (size_t k = 0; k < pc.size(); ++k)
                std::cout << "  " << std::setw(2) << k << " " << std::left << std::setw(14) << data.class_names[k]
                          << std::right << std::setprecision(2) << (std::isnan(pc[k]) ? 0.0 : 100 * pc[k]) << "%\n";
            std::cout << "\nconfusion matrix (rows: true class, columns: predicted):\n"
                      << m.markdown(data.class_names);
        };
        if (models::is_soft_tree(file.metadata) || models::is_cart(file.metadata)) {
            // A tree written by `glassbox distill`: rows normalised as its metadata records, then its predictions.
            std::vector<float> mean, stddev;
            if (!models::read_normalization(file.metadata, o->checkpoint, mean, stddev))
                std::cerr << "note: " << o->checkpoint << " records no input normalisation; evaluating on raw [0, 1] pixels\n";
            const Tensor rows = train::normalized_rows(data.images, mean, stddev);
            train::ConfusionMatrix m(data.classes());
            const std::vector<int32_t> labels = data.labels.to_vector<int32_t>();
            std::string what;
            if (models::is_soft_tree(file.metadata)) {
                auto tree = models::load_soft_tree(file);
                const models::SoftTreeConfig& tc = tree->config();
                GB_CHECK(tc.classes == data.classes() && tc.channels == data.channels() && tc.height == data.height() &&
                             tc.width == data.width(),
                         o->checkpoint, ": the tree takes ", tc.channels, "x", tc.height, "x", tc.width, " images in ",
                         tc.classes, " classes; ", o->data, " has ", data.channels(), "x", data.height(), "x",
                         data.width(), " images in ", data.classes(), " classes");
                tree->to(device);
                const int64_t N = rows.dim(0);
                for (int64_t s = 0; s < N; s += o->batch_size) {
                    const int64_t n = std::min(o->batch_size, N - s);
                    const auto p = tree->predict(rows.narrow(s, n).to(device));
                    for (int64_t i = 0; i < n; ++i) m.add(p.label[static_cast<size_t>(i)], labels[static_cast<size_t>(s + i)]);
                }
                what = tree->describe() + ", the most probable leaf's class";
            } else {
                const models::CartTree cart = models::load_cart(file);
                GB_CHECK(cart.classes == data.classes() && cart.features == rows.dim(1), o->checkpoint,
                         ": the CART tree takes ", cart.features, " inputs in ", cart.classes, " classes; ", o->data,
                         " has ", rows.dim(1), " values per image in ", data.classes(), " classes");
                const std::vector<int32_t> p = cart.predict(rows.data<float>(), rows.dim(0));
                for (size_t i = 0; i < p.size(); ++i) m.add(p[i], labels[i]);
                what = "CART tree, " + std::to_string(cart.leaves()) + " leaves, depth " + std::to_string(cart.max_depth());
            }
            report(what, m, "");
            return;
        }
        const models::ModelOptions mo = explain::model_options_for(data);
        models::Checkpoint ck = models::checkpoint_from(std::move(file), o->model, &mo);
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
        std::ostringstream loss;
        loss << "  loss: " << std::fixed << std::setprecision(4) << r.loss;
        report(ck.model->describe(), r.confusion, loss.str());
    });
}

}  // namespace gb::cli
