// Filter pruning for Python (explain/pruning.h, models/prune.h): the criteria's per-filter scores on a reference
// batch the caller gives, and the pruned (genuinely smaller) model, as `glassbox prune` makes it.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <optional>
#include <string>
#include <vector>

#include "arrays.h"
#include "explain/pruning.h"
#include "explain/pruning_run.h"
#include "model.h"
#include "models/prune.h"

namespace gb::python {

namespace {

std::vector<explain::FilterScores> scores_of(Model& model, const std::string& criterion,
                                             const std::optional<InArray>& reference,
                                             const std::optional<std::vector<int32_t>>& labels, int64_t batch) {
    const explain::PruneCriterion c = explain::parse_prune_criterion(criterion);
    const Tensor x = reference ? to_batch(*reference, model.device, "reference") : Tensor();
    const std::vector<int32_t> y = labels.value_or(std::vector<int32_t>{});
    nb::gil_scoped_release release;
    return explain::filter_scores(*model.net, c, x, y, batch);
}

nb::dict filter_scores(const std::shared_ptr<Model>& model, const std::string& criterion,
                       const std::optional<InArray>& reference, const std::optional<std::vector<int32_t>>& labels,
                       bool normalized, int64_t batch) {
    const auto s = scores_of(*model, criterion, reference, labels, batch);
    const auto norm = explain::normalized_scores(s, explain::parse_prune_criterion(criterion));
    nb::dict out;
    for (size_t l = 0; l < s.size(); ++l)
        out[nb::str(s[l].layer.c_str())] = to_numpy(normalized ? norm[l] : s[l].scores);
    return out;
}

std::shared_ptr<Model> pruned_model(const Model& source, std::shared_ptr<models::Vgg> net, const std::string& criterion,
                                    double rate) {
    auto out = std::make_shared<Model>();
    out->metadata = explain::pruned_metadata(source.metadata, *net, criterion, rate,
                                             source.metadata.count("model") ? "a checkpoint" : "a Python model");
    out->device = source.device;
    net->to(out->device);
    net->eval();
    out->net = std::move(net);
    return out;
}

// The smaller VGG keeping `keep` filters per convolution. The surgery reads the parameters on the CPU: a model
// elsewhere is moved there for it and back (also on error). Without the GIL.
std::shared_ptr<models::Vgg> prune_on_cpu(Model& model, const std::vector<std::vector<int64_t>>& keep) {
    models::Vgg& src = *model.net;
    src.to(Device::cpu());
    try {
        auto net = models::prune(src, keep);
        src.to(model.device);
        return net;
    } catch (...) {
        src.to(model.device);
        throw;
    }
}

std::shared_ptr<Model> prune(const std::shared_ptr<Model>& model, const std::string& criterion, double rate,
                             const std::optional<InArray>& reference, const std::optional<std::vector<int32_t>>& labels,
                             int64_t batch) {
    const explain::PruneCriterion c = explain::parse_prune_criterion(criterion);
    GB_CHECK(rate > 0 && rate < 1, "prune: the rate must be inside (0, 1), got ", rate);
    const auto s = scores_of(*model, criterion, reference, labels, batch);
    std::shared_ptr<models::Vgg> net;
    {
        nb::gil_scoped_release release;
        const auto keep = explain::filters_to_keep(s, c, rate);
        net = prune_on_cpu(*model, keep);
    }
    return pruned_model(*model, std::move(net), criterion, rate);
}

std::shared_ptr<Model> prune_filters(const std::shared_ptr<Model>& model, const std::vector<std::vector<int64_t>>& keep) {
    std::shared_ptr<models::Vgg> net;
    {
        nb::gil_scoped_release release;
        net = prune_on_cpu(*model, keep);
    }
    return pruned_model(*model, std::move(net), "given", 0);
}

}  // namespace

void bind_pruning(nb::module_& m) {
    m.def("filter_scores", &filter_scores, nb::arg("model"), nb::arg("criterion") = "lrp", nb::kw_only(),
          nb::arg("reference").none() = nb::none(), nb::arg("labels").none() = nb::none(),
          nb::arg("normalized") = false, nb::arg("batch") = 64,
          "Per-filter pruning scores of every Conv2d: 'lrp' (Yeom et al. 2021: relevance at the filter's output "
          "under epsilon-plus, the true class's logit as seed, summed over `reference` and positions), 'l1' (Li et "
          "al. 2017: sum |w|; needs no reference) or 'taylor' (Molchanov et al. 2017: |mean over samples of sum over "
          "positions of a dC/da|, C the cross-entropy). `reference` [N, C, H, W] as the model receives it "
          "(normalised), `labels` [N] its classes. normalized=True: scaled per layer as the ranking uses them. "
          "Returns {layer: float64 [filters]}.");
    m.def("prune", &prune, nb::arg("model"), nb::arg("criterion") = "lrp", nb::arg("rate") = 0.5, nb::kw_only(),
          nb::arg("reference").none() = nb::none(), nb::arg("labels").none() = nb::none(), nb::arg("batch") = 64,
          "The model with round(rate * filters) convolution filters removed, the lowest of `criterion`'s "
          "per-layer-normalised scores over all layers (one per layer always stays), as `glassbox prune` does "
          "(without its fine-tuning): a new, smaller Model carrying the source's metadata (normalisation, classes).");
    m.def("prune_filters", &prune_filters, nb::arg("model"), nb::arg("keep"),
          "The model keeping only filters keep[l] of its l-th Conv2d: a new, smaller Model.");
}

}  // namespace gb::python
