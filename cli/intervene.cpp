// `glassbox intervene`: causal interventions on the channels of one layer (Pearl's do-operator on units,
// explain/interventions.h). In order: options checked and --value parsed; --out made (OutputDir: removed again if
// the command fails); the checkpoint and its conventions; the first --limit images of --data --split (normalised);
// for --value mean or resample, the first --reference images of the train split as the reference set. The rest is
// library code: intervention_study (the layer and channels checked first, then a clean pass with mean |a|,
// gradient x activation and LRP at the layer, one intervened pass per channel and one per ranking and k; progress
// on stderr), then write_intervention_study: channels.csv, effect_logits.npy, effect_probabilities.npy,
// ablation.csv, ablation.svg, report.html, run.json last. Prints the agreement table and the report's path. Runs
// on the CPU (there is no --device).
#include <CLI/CLI.hpp>

#include <iomanip>
#include <iostream>
#include <numeric>

#include "cli/commands.h"
#include "cli/options.h"
#include "explain/inputs.h"
#include "explain/interventions.h"
#include "models/checkpoint.h"

namespace gb::cli {

namespace {

struct InterveneOptions {
    std::string checkpoint, model, layer, value = "zero", data = "fashion-mnist", data_dir, split = "test", out = "intervene";
    std::string composite = "epsilon-plus-flat";
    std::vector<int64_t> channels, ks;
    int64_t limit = 1000, reference = 1000, batch = 256;
    uint64_t seed = 0;
    ComputeOptions compute;  // --threads only
};

// The first n images of `d` (the `split` split of --data), normalised as the checkpoint expects.
explain::ExplainInputs first_images(const models::Checkpoint& ck, const InterveneOptions& o, const io::Dataset& d,
                                    const std::string& split, int64_t n, bool notes) {
    explain::ExplainInputs in;
    std::ostream quiet(nullptr);  // the reference set's notes repeat the images' ones
    explain::read_checkpoint_conventions(ck, in, notes ? std::cerr : quiet);
    std::vector<int64_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), int64_t{0});
    explain::load_samples(d, o.data, split, idx, ck.model->config(), in, notes ? &std::cerr : nullptr);
    explain::normalize_inputs(in);
    return in;
}

void run_intervene(const InterveneOptions& o) {
    explain::InterventionStudyOptions so;
    so.value = explain::parse_do_value(o.value, &so.constant);
    so.layer = o.layer;
    so.channels = o.channels;
    so.ks = o.ks;
    so.seed = o.seed;
    so.batch = o.batch;
    so.composite = o.composite;
    OutputDir out_dir(o.out);
    const io::Dataset images = io::load_dataset(o.data, io::split_named(o.split), o.data_dir);
    const models::ModelOptions mo = explain::model_options_for(images);  // for a plain state dict
    models::Checkpoint ck = models::load_checkpoint(o.checkpoint, o.model, &mo);
    const explain::ExplainInputs in = first_images(ck, o, images, o.split, o.limit, true);
    Tensor reference;
    if (so.value == explain::DoValue::Mean || so.value == explain::DoValue::Resample) {
        std::cerr << "intervene: reference set: the first " << o.reference << " " << o.data << " train images\n";
        reference = first_images(ck, o, io::load_dataset(o.data, io::Split::Train, o.data_dir), "train", o.reference,
                                 false)
                        .normalized;
    }
    std::cerr << "intervene: do(" << o.layer << " channel := " << o.value << ") on " << o.limit << " " << o.data << " " << o.split
              << " images\n";
    int64_t last_tenth = -1;
    const explain::InterventionStudy s =
        explain::intervention_study(*ck.model, in.normalized, in.labels, reference, so, [&](int64_t done, int64_t total) {
            const int64_t tenth = done * 10 / total;
            if (tenth != last_tenth || done == total) {
                std::cerr << "intervene: " << done << "/" << total << " intervened passes\n";
                last_tenth = tenth;
            }
        });
    const std::string html = explain::write_intervention_study(
        o.out, s, in.class_names,
        {{"Model", ck.model->describe()}, {"Checkpoint", o.checkpoint}, {"Data", o.data + " " + o.split + ", first " + std::to_string(o.limit)}});
    out_dir.done();
    std::cout << "accuracy " << std::fixed << std::setprecision(4) << s.accuracy << "; causal ranking vs:\n";
    for (const auto& a : s.agreement) {
        std::cout << "  " << std::left << std::setw(22) << a.criterion << std::right << " Spearman " << std::setprecision(3)
                  << std::setw(6) << a.spearman << ", top-" << s.ks.front() << ".." << s.ks.back() << " overlap";
        for (double v : a.top_k_overlap) std::cout << " " << std::setprecision(2) << v;
        std::cout << "\n";
    }
    std::cout << "report: " << html << "\n";
}

}  // namespace

void add_intervene_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("intervene",
                                   "Causal effect of each channel of a layer (do-operator), ranked and compared with mean |a|, "
                                   "gradient x activation and LRP; accuracy with the top-k channels ablated");
    auto o = std::make_shared<InterveneOptions>();
    add_checkpoint_option(*cmd, o->checkpoint, /*required=*/true);
    add_model_option(*cmd, o->model);
    cmd->add_option("--layer", o->layer, "The layer whose output channels are intervened on (e.g. features.7; see glassbox info)")
        ->required();
    cmd->add_option("--channels", o->channels, "Channels to study (default: all)")->check(integer(0, kMaxCount));
    cmd->add_option("--value", o->value,
                    "do(a := value): zero, mean (each unit's mean over the reference set), constant:V, or resample (the "
                    "units of a random reference image)")
        ->capture_default_str();
    add_data_options(*cmd, o->data, o->data_dir, "Dataset of the images and of the reference set");
    add_split_option(*cmd, o->split);
    add_limit_option(*cmd, o->limit, "The first N images of the split", 1)->capture_default_str();
    cmd->add_option("--reference", o->reference, "Reference set for mean and resample: the first N train images")
        ->capture_default_str()
        ->check(integer(1, kMaxCount));
    cmd->add_option("--k", o->ks, "Sizes of the top-k ablations (default: 1, 2, 4, ... and all studied channels)")
        ->check(integer(1, kMaxCount));
    cmd->add_option("--composite", o->composite, "LRP preset for the relevance at the layer")->capture_default_str();
    add_batch_size_option(*cmd, o->batch)->capture_default_str()->check(integer(1, kMaxBatch));
    add_seed_option(*cmd, o->seed, "Seed of the resampling draws and of the random ranking");
    add_out_option(*cmd, o->out);
    add_compute_options(*cmd, o->compute, /*with_device=*/false);
    cmd->callback([o] {
        o->compute.apply();
        run_intervene(*o);
    });
}

}  // namespace gb::cli
