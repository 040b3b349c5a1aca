// Distillation for Python: the soft decision tree (models/soft_tree.h) as glassbox.SoftTree (load, predict,
// route, paths, filters, leaf distributions), the CART baseline as glassbox.CartTree, and the run of
// `glassbox distill` (train/distill.h, explain/tree_report.h) with a progress callback; glassbox.distill wraps it.
#include <nanobind/nanobind.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <iostream>
#include <optional>

#include "arrays.h"
#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/factory.h"
#include "explain/tree_report.h"
#include "model.h"
#include "models/cart.h"
#include "models/checkpoint.h"
#include "models/soft_tree.h"
#include "train/distill.h"

namespace gb::python {

namespace {

struct SoftTreeModel {
    std::shared_ptr<models::SoftTree> tree;
    std::map<std::string, std::string> metadata;
};

struct CartModel {
    models::CartTree tree;
    std::map<std::string, std::string> metadata;
};

// x as rows [N, C*H*W]: [N, C, H, W], [C, H, W] (one image) or [N, C*H*W].
Tensor rows_of(const InArray& x, int64_t inputs) {
    Tensor t = to_tensor(x);
    if (t.rank() == 3) t = t.view(Shape{1, t.numel()});
    GB_CHECK(t.rank() >= 2 && t.dim(0) >= 1 && t.numel() / t.dim(0) == inputs, "x: expected a batch of ", inputs,
             " values per sample ([N, C, H, W], [C, H, W] or [N, ", inputs, "]), got ", t.shape().str());
    return t.view(Shape{t.dim(0), inputs});
}

// A NumPy array owning a copy of `v` (1-D).
template <typename T>
nb::ndarray<nb::numpy, T> numpy_of(std::vector<T> v) {
    auto* data = new std::vector<T>(std::move(v));
    nb::capsule owner(data, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
    return nb::ndarray<nb::numpy, T>(data->data(), {data->size()}, owner);
}

nb::dict route(SoftTreeModel& m, const InArray& x) {
    const Tensor rows = rows_of(x, m.tree->config().inputs());
    models::SoftTreePrediction p;
    {
        nb::gil_scoped_release release;
        p = m.tree->predict(rows);
    }
    nb::dict d;
    d["leaf"] = numpy_of(p.leaf);
    d["leaf_probability"] = numpy_of(p.leaf_probability);
    d["label"] = numpy_of(p.label);
    d["mixture"] = to_numpy(p.mixture);
    d["right"] = to_numpy(p.right);
    return d;
}

nb::list paths(SoftTreeModel& m, const InArray& x) {
    const Tensor rows = rows_of(x, m.tree->config().inputs());
    models::SoftTreePrediction p;
    {
        nb::gil_scoped_release release;
        p = m.tree->predict(rows);
    }
    const int64_t I = m.tree->config().inner_nodes();
    const std::vector<float> right = p.right.to_vector<float>();
    nb::list out;
    for (size_t n = 0; n < p.leaf.size(); ++n) {
        nb::list nodes;
        for (const auto& [node, dir] : models::SoftTree::path_to_leaf(m.tree->config().depth, p.leaf[n])) {
            const double pr = right[n * static_cast<size_t>(I) + static_cast<size_t>(node)];
            nodes.append(nb::make_tuple(node, dir ? "right" : "left", dir ? pr : 1 - pr));
        }
        nb::dict d;
        d["leaf"] = p.leaf[n];
        d["probability"] = p.leaf_probability[n];
        d["label"] = p.label[n];
        d["nodes"] = nodes;
        out.append(d);
    }
    return out;
}

std::optional<std::pair<std::vector<float>, std::vector<float>>> normalization_of(
    const std::map<std::string, std::string>& meta) {
    std::vector<float> mean, stddev;
    if (!models::read_normalization(meta, "the tree", mean, stddev)) return std::nullopt;
    return std::make_pair(mean, stddev);
}


nb::dict distill(const std::map<std::string, nb::object>& kwargs, const std::optional<nb::callable>& progress,
                 bool verbose) {
    train::DistillConfig c;
    explain::TreeReportOptions ro;
    std::vector<std::string> unknown;
    for (const auto& [key, value] : kwargs) try {
        if (key == "checkpoint") c.checkpoint = nb::cast<std::string>(value);
        else if (key == "model") c.model = nb::cast<std::string>(value);
        else if (key == "data") c.data = nb::cast<std::string>(value);
        else if (key == "data_dir") c.data_dir = nb::cast<std::string>(value);
        else if (key == "depth") c.depth = nb::cast<int64_t>(value);
        else if (key == "targets") c.targets = nb::cast<std::string>(value);
        else if (key == "temperature") c.temperature = nb::cast<float>(value);
        else if (key == "epochs") c.epochs = nb::cast<int64_t>(value);
        else if (key == "batch_size") c.batch_size = nb::cast<int64_t>(value);
        else if (key == "lr") c.lr = nb::cast<float>(value);
        else if (key == "lambda_") c.lambda = nb::cast<float>(value);
        else if (key == "beta") c.beta = nb::cast<float>(value);
        else if (key == "seed") c.seed = nb::cast<uint64_t>(value);
        else if (key == "train_limit") c.train_limit = nb::cast<int64_t>(value);
        else if (key == "test_limit") c.test_limit = nb::cast<int64_t>(value);
        else if (key == "cart") c.cart = nb::cast<bool>(value);
        else if (key == "out_dir") c.out_dir = nb::cast<std::string>(value);
        else if (key == "report_images") ro.images = nb::cast<int64_t>(value);
        else if (key == "report_levels") ro.levels = nb::cast<int64_t>(value);
        else if (key == "device") c.device = Device::parse(nb::cast<std::string>(value));
        else unknown.push_back(key);
    } catch (const nb::cast_error&) {
        throw Error("distill: option '" + key + "' does not take a " +
                    std::string(nb::str(nb::type_name(value.type())).c_str()));
    }
    GB_CHECK(unknown.empty(), "distill: unknown option '", unknown.empty() ? "" : unknown[0],
             "' (checkpoint, model, data, data_dir, depth, targets, temperature, epochs, batch_size, lr, lambda_, beta, "
             "seed, train_limit, test_limit, cart, out_dir, report_images, report_levels, device)");
    GB_CHECK(ro.images >= 0 && ro.levels >= 1, "distill: report_images must be >= 0 and report_levels >= 1");
    std::optional<nb::python_error> raised;
    if (progress)
        c.on_batch = [&](int64_t epoch, int64_t epochs, int64_t batch, int64_t batches, double loss) {
            nb::gil_scoped_acquire gil;
            try {
                nb::dict d;
                d["epoch"] = epoch;
                d["epochs"] = epochs;
                d["batch"] = batch;
                d["batches"] = batches;
                d["loss"] = loss;
                (*progress)(d);
            } catch (nb::python_error& e) {
                raised.emplace(e);
                throw Error("distillation stopped by the progress callback at epoch " + std::to_string(epoch) +
                            ", batch " + std::to_string(batch));
            }
        };
    NullBuffer null;
    std::ostream quiet(&null);
    train::DistillResult r;
    std::string report;
    try {
        nb::gil_scoped_release release;
        r = train::run_distillation(c, verbose ? std::cerr : quiet);
        if (!c.out_dir.empty()) report = explain::write_tree_report(c.out_dir, c, r, ro);
    } catch (const Error&) {
        if (raised) throw *raised;
        throw;
    }
    nb::list history;
    for (const auto& e : r.history) {
        nb::dict d;
        d["epoch"] = e.epoch;
        d["lr"] = e.lr;
        d["loss"] = e.loss;
        d["data_loss"] = e.data_loss;
        d["penalty"] = e.penalty;
        d["test_accuracy"] = e.test_accuracy;
        d["fidelity"] = e.fidelity;
        d["seconds"] = e.seconds;
        history.append(d);
    }
    nb::dict out;
    auto tree = std::make_shared<SoftTreeModel>();
    tree->tree = r.tree;
    tree->metadata = r.metadata;
    for (const auto& [k, v] : r.tree->config().to_metadata()) tree->metadata[k] = v;
    out["tree"] = tree;
    out["history"] = history;
    out["teacher_accuracy"] = r.teacher_accuracy;
    out["accuracy"] = r.tree_scores.accuracy;
    out["fidelity"] = r.tree_scores.fidelity;
    out["mixture_accuracy"] = r.mixture.accuracy;
    out["mixture_fidelity"] = r.mixture.fidelity;
    if (r.cart.nodes() > 0) {
        auto cart = std::make_shared<CartModel>();
        cart->tree = r.cart;
        out["cart"] = cart;
        out["cart_accuracy"] = r.cart_scores.accuracy;
        out["cart_fidelity"] = r.cart_scores.fidelity;
    }
    out["teacher_predictions"] = numpy_of(r.teacher_test);
    out["tree_path"] = r.tree_path;
    out["cart_path"] = r.cart_path;
    out["results_json"] = r.results_json;
    out["report"] = report;
    return out;
}

}  // namespace

void bind_distill(nb::module_& m) {
    nb::class_<SoftTreeModel>(m, "SoftTree",
                              "A soft decision tree (Frosst & Hinton 2017) as `glassbox distill` writes it. Inputs are "
                              "what the tree takes: images normalised as `normalization` says, [N, C, H, W], one image "
                              "[C, H, W], or rows [N, C*H*W].")
        .def_static(
            "load",
            [](const std::string& path) {
                auto out = std::make_shared<SoftTreeModel>();
                nb::gil_scoped_release release;
                const io::SafeTensors file = io::load_safetensors(path);
                out->tree = models::load_soft_tree(file);
                out->metadata = file.metadata;
                return out;
            },
            nb::arg("path"), "Loads tree.safetensors.")
        .def(
            "predict",
            [](SoftTreeModel& self, const InArray& x) {
                const Tensor rows = rows_of(x, self.tree->config().inputs());
                std::vector<int32_t> label;
                {
                    nb::gil_scoped_release release;
                    label = self.tree->predict(rows).label;
                }
                return numpy_of(std::move(label));
            },
            nb::arg("x"), "The class of each sample's most probable leaf (the paper's prediction), [N].")
        .def("route", &route, nb::arg("x"),
             "{'leaf': [N] most probable leaf, 'leaf_probability': [N] its path probability, 'label': [N] its arg-max "
             "class, 'mixture': [N, classes] sum_l P_l(x) Q_l, 'right': [N, inner nodes] p_i(x)}.")
        .def("paths", &paths, nb::arg("x"),
             "Per sample its most probable path: {'leaf', 'probability', 'label', 'nodes': [(node, 'left'|'right', "
             "probability of that branch), ...] from the root}.")
        .def(
            "leaf_log_probabilities",
            [](SoftTreeModel& self, const InArray& x) {
                const Tensor rows = rows_of(x, self.tree->config().inputs());
                Tensor out;
                {
                    nb::gil_scoped_release release;
                    autograd::NoGradGuard no_grad;
                    out = self.tree->leaf_log_probabilities(rows);
                }
                return to_numpy(out);
            },
            nb::arg("x"), "log P_l(x) [N, leaves].")
        .def_prop_ro("depth", [](const SoftTreeModel& s) { return s.tree->config().depth; })
        .def_prop_ro("classes", [](const SoftTreeModel& s) { return s.tree->config().classes; })
        .def_prop_ro("beta", [](const SoftTreeModel& s) { return s.tree->config().beta; })
        .def_prop_ro("input_shape",
                     [](const SoftTreeModel& s) {
                         const auto& c = s.tree->config();
                         return std::vector<int64_t>{c.channels, c.height, c.width};
                     })
        .def_prop_ro(
            "filters",
            [](const SoftTreeModel& s) {
                const auto& c = s.tree->config();
                return to_numpy(s.tree->inner().weight().to(Device::cpu()).clone().view(
                    Shape{c.inner_nodes(), c.channels, c.height, c.width}));
            },
            nb::rv_policy::automatic, "The inner nodes' filters w_i [inner nodes, C, H, W] (a copy), breadth first.")
        .def_prop_ro(
            "biases", [](const SoftTreeModel& s) { return to_numpy(s.tree->inner().bias().to(Device::cpu()).clone()); },
            nb::rv_policy::automatic, "b_i [inner nodes] (a copy).")
        .def_prop_ro(
            "leaf_distributions", [](const SoftTreeModel& s) { return to_numpy(s.tree->leaf_distributions()); },
            nb::rv_policy::automatic, "Q [leaves, classes]: each leaf's class distribution.")
        .def_prop_ro("metadata", [](const SoftTreeModel& s) { return s.metadata; })
        .def_prop_ro("normalization", [](const SoftTreeModel& s) { return normalization_of(s.metadata); },
                     "(mean, std) per channel of the inputs, or None (raw [0, 1] pixels).")
        .def(
            "state_dict",
            [](const SoftTreeModel& s) {
                nb::dict out;
                for (const auto& [name, t] : s.tree->state()) out[nb::str(name.c_str())] = to_numpy(t.to(Device::cpu()).clone());
                return out;
            },
            "inner.weight, inner.bias, leaf_logits (copies).")
        .def(
            "save",
            [](const SoftTreeModel& s, const std::string& path) {
                nb::gil_scoped_release release;
                models::save_soft_tree(path, *s.tree, s.metadata);
            },
            nb::arg("path"), "Writes the tree (safetensors with its configuration and metadata), atomically.")
        .def("__repr__", [](const SoftTreeModel& s) { return s.tree->describe(); });

    nb::class_<CartModel>(m, "CartTree", "A CART tree (axis-aligned, Gini) as `glassbox distill` writes it (cart.safetensors).")
        .def_static(
            "load",
            [](const std::string& path) {
                auto out = std::make_shared<CartModel>();
                nb::gil_scoped_release release;
                const io::SafeTensors file = io::load_safetensors(path);
                out->tree = models::load_cart(file);
                out->metadata = file.metadata;
                return out;
            },
            nb::arg("path"))
        .def(
            "predict",
            [](const CartModel& self, const InArray& x) {
                const Tensor rows = rows_of(x, self.tree.features);
                return numpy_of(self.tree.predict(rows.data<float>(), rows.dim(0)));
            },
            nb::arg("x"), "Classes [N] of rows normalised as `normalization` says.")
        .def_prop_ro("nodes", [](const CartModel& s) { return s.tree.nodes(); })
        .def_prop_ro("leaves", [](const CartModel& s) { return s.tree.leaves(); })
        .def_prop_ro("depth", [](const CartModel& s) { return s.tree.max_depth(); })
        .def_prop_ro("normalization", [](const CartModel& s) { return normalization_of(s.metadata); })
        .def("__repr__", [](const CartModel& s) {
            return "CartTree(nodes=" + std::to_string(s.tree.nodes()) + ", leaves=" + std::to_string(s.tree.leaves()) +
                   ", depth=" + std::to_string(s.tree.max_depth()) + ")";
        });

    m.def("_distill", &distill, nb::arg("config"), nb::arg("progress").none(), nb::arg("verbose"),
          "The run of `glassbox distill` (train::run_distillation + the report); glassbox.distill wraps it.");
}

}  // namespace gb::python
