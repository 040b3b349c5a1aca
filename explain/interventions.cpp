// do(a = v) on a model's units through forward replace hooks, and the channel study (interventions.h).
#include "explain/interventions.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/factory.h"
#include "core/rng.h"
#include "explain/composite.h"
#include "explain/metrics.h"
#include "explain/model_methods.h"
#include "explain/perturbation.h"
#include "explain/target.h"
#include "explain/trace.h"

namespace gb::explain {

DoValue parse_do_value(const std::string& text, float* constant) {
    if (text == "zero") return DoValue::Zero;
    if (text == "mean") return DoValue::Mean;
    if (text == "resample") return DoValue::Resample;
    if (text.rfind("constant:", 0) == 0) {
        const std::string v = text.substr(9);
        size_t used = 0;
        float c = 0.f;
        try {
            c = std::stof(v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        GB_CHECK(!v.empty() && used == v.size() && std::isfinite(c), "intervention value '", text,
                 "': constant:V needs a finite number V");
        if (constant) *constant = c;
        return DoValue::Constant;
    }
    throw Error("intervention value '" + text + "': expected zero, mean, constant:V or resample");
}

std::string do_value_name(DoValue value, float constant) {
    switch (value) {
        case DoValue::Zero: return "zero";
        case DoValue::Constant: {
            std::ostringstream o;
            o << "constant:" << constant;
            return o.str();
        }
        case DoValue::Mean: return "mean";
        case DoValue::Resample: return "resample";
        case DoValue::Given: return "given";
    }
    return "?";
}

LayerOutputs record_outputs(layers::Layer& model, const Tensor& x, const std::vector<std::string>& wanted, int64_t batch) {
    LayerOutputs out;
    std::vector<std::pair<layers::Layer*, int>> hooks;
    std::map<std::string, std::vector<float>> rows;
    std::map<std::string, Shape> shapes;
    for (const auto& [path, layer] : model.named_layers()) {
        if (std::find(wanted.begin(), wanted.end(), path) == wanted.end() || rows.count(path)) continue;
        rows[path];
        hooks.emplace_back(layer, layer->on_forward([&, p = path](layers::Layer&, const Tensor&, const Tensor& o) {
            const auto v = o.to_vector<float>();
            rows[p].insert(rows[p].end(), v.begin(), v.end());
            shapes[p] = o.shape();
        }));
    }
    for (const auto& w : wanted) GB_CHECK(rows.count(w), "intervention: no layer '", w, "' in the model");
    try {
        predict(model, x, batch);
    } catch (...) {
        for (auto& [l, h] : hooks) l->remove_hook(h);
        throw;
    }
    for (auto& [l, h] : hooks) l->remove_hook(h);
    for (auto& [p, v] : rows) {
        GB_CHECK(shapes.count(p), "intervention: layer '", p, "' was not called in the forward pass");
        std::vector<int64_t> dims = shapes[p].dims();
        dims[0] = x.dim(0);
        out[p] = from_vector(v, Shape(dims), x.device());
    }
    return out;
}

// One spec on one layer: the mask of intervened units of one sample, the per-unit values where they are fixed,
// and the generator of Resample.
struct Intervention::State {
    DoSpec spec;
    Shape sample;                 // one sample's output shape (without N)
    std::vector<float> mask;      // [per]: 1 on the intervened units
    std::vector<float> values;    // [per]: Zero, Constant, Mean
    Tensor reference;             // Resample: [R, per] on the host
    Generator gen;
    explicit State(uint64_t seed) : gen(seed) {}

    Tensor replace(const Tensor& out) {
        const int64_t N = out.dim(0), per = out.numel() / N;
        GB_CHECK(per == static_cast<int64_t>(mask.size()), "intervention on ", spec.layer, ": the output ", out.shape().str(),
                 " has another size than at the probe (", mask.size(), " per sample)");
        std::vector<float> keep(static_cast<size_t>(N * per)), fill(static_cast<size_t>(N * per), 0.f);
        std::vector<float> given;
        if (spec.value == DoValue::Given) {
            GB_CHECK(spec.given.numel() == N * per, "intervention on ", spec.layer, ": the given values ",
                     spec.given.shape().str(), " do not match the output ", out.shape().str());
            given = spec.given.to_vector<float>();
        }
        const float* ref = reference.defined() ? reference.data<float>() : nullptr;
        const int64_t R = reference.defined() ? reference.dim(0) : 0;
        for (int64_t n = 0; n < N; ++n) {
            const int64_t r = spec.value == DoValue::Resample ? static_cast<int64_t>(gen.below(static_cast<uint64_t>(R))) : 0;
            for (int64_t u = 0; u < per; ++u) {
                const auto i = static_cast<size_t>(n * per + u);
                const bool on = mask[static_cast<size_t>(u)] != 0.f;
                keep[i] = on ? 0.f : 1.f;
                if (!on) continue;
                if (spec.value == DoValue::Given) fill[i] = given[i];
                else if (spec.value == DoValue::Resample) fill[i] = ref[r * per + u];
                else fill[i] = values[static_cast<size_t>(u)];
            }
        }
        // a * keep + v * (1 - keep): exactly a where keep = 1 and exactly v where keep = 0 (a finite), as
        // differentiable functions so the gradient (keep) and relevance pass through the untouched units only.
        return add(mul(out, from_vector(keep, out.shape(), out.device())), from_vector(fill, out.shape(), out.device()));
    }
};

Intervention::Intervention(layers::Layer& model, const Shape& input, std::vector<DoSpec> specs, const LayerOutputs& reference,
                           uint64_t seed) {
    GB_CHECK(input.rank() == 3, "intervention: the input shape must be [C, H, W], got ", input.str());
    GB_CHECK(!specs.empty(), "intervention: nothing to intervene on");
    std::vector<std::string> layers;
    for (const auto& s : specs) layers.push_back(s.layer);
    const auto all = model.named_layers();
    for (const auto& s : specs) {
        bool found = false;
        for (const auto& [p, l] : all) found |= p == s.layer;
        if (!found) {
            std::string names;
            for (const auto& [p, l] : all)
                if (!p.empty()) names += (names.empty() ? "" : ", ") + p;
            throw Error("intervention: no layer '" + s.layer + "' in the model (layers: " + names + ")");
        }
    }
    // The probe: one sample of zeros, to learn the output shapes.
    const Device dev = model.parameters().empty() ? Device::cpu() : model.parameters().front().device();
    const LayerOutputs probe = record_outputs(model, zeros(Shape{1, input[0], input[1], input[2]}, DType::Float32, dev), layers, 1);
    for (auto& s : specs) {
        auto st = std::make_shared<State>(seed);
        const Tensor& p = probe.at(s.layer);
        std::vector<int64_t> dims(p.shape().dims().begin() + 1, p.shape().dims().end());
        st->sample = Shape(dims);
        const int64_t per = p.numel(), ch = p.rank() >= 2 ? p.dim(1) : 1, plane = per / ch;
        st->mask.assign(static_cast<size_t>(per), 0.f);
        for (int64_t c : s.channels) {
            GB_CHECK(c >= 0 && c < ch, "intervention: channel ", c, " is outside the ", ch, " channels of ", s.layer,
                     " (output ", p.shape().str(), ")");
            std::fill(st->mask.begin() + c * plane, st->mask.begin() + (c + 1) * plane, 1.f);
        }
        for (int64_t u : s.units) {
            GB_CHECK(u >= 0 && u < per, "intervention: unit ", u, " is outside the ", per, " units of ", s.layer,
                     " (output ", p.shape().str(), " per sample)");
            st->mask[static_cast<size_t>(u)] = 1.f;
        }
        if (s.channels.empty() && s.units.empty()) std::fill(st->mask.begin(), st->mask.end(), 1.f);
        st->values.assign(static_cast<size_t>(per), 0.f);
        if (s.value == DoValue::Constant) std::fill(st->values.begin(), st->values.end(), s.constant);
        if (s.value == DoValue::Mean || s.value == DoValue::Resample) {
            const auto it = reference.find(s.layer);
            GB_CHECK(it != reference.end() && it->second.defined() && it->second.dim(0) > 0,
                     "intervention: value '", do_value_name(s.value), "' on ", s.layer, " needs reference outputs of that layer");
            const Tensor& r = it->second;
            GB_CHECK(r.numel() / r.dim(0) == per, "intervention: the reference outputs of ", s.layer, " ", r.shape().str(),
                     " do not match its output ", p.shape().str());
            const int64_t R = r.dim(0);
            const Tensor host = r.to(Device::cpu());
            if (s.value == DoValue::Mean) {
                std::vector<double> sum(static_cast<size_t>(per), 0.0);
                const float* v = host.data<float>();
                for (int64_t i = 0; i < R; ++i)
                    for (int64_t u = 0; u < per; ++u) sum[static_cast<size_t>(u)] += v[i * per + u];
                for (int64_t u = 0; u < per; ++u)
                    st->values[static_cast<size_t>(u)] = static_cast<float>(sum[static_cast<size_t>(u)] / static_cast<double>(R));
            } else {
                st->reference = host.view(Shape{R, per});
            }
        }
        GB_CHECK(s.value != DoValue::Given || s.given.defined(), "intervention: value 'given' on ", s.layer, " needs the values");
        st->spec = std::move(s);
        states_.push_back(st);
    }
    for (const auto& st : states_)
        for (const auto& [p, l] : all)
            if (p == st->spec.layer) {
                hooks_.emplace_back(l, l->on_forward_replace([st](layers::Layer&, const Tensor&, const Tensor& out) {
                    return std::optional<Tensor>(st->replace(out));
                }));
                break;
            }
}

Intervention::~Intervention() { remove(); }

void Intervention::remove() {
    for (auto& [l, h] : hooks_) l->remove_hook(h);
    hooks_.clear();
}

std::string Intervention::describe() const {
    std::ostringstream o;
    for (const auto& st : states_) {
        const DoSpec& s = st->spec;
        o << "do(" << s.layer;
        if (!s.channels.empty()) {
            o << " channels ";
            for (size_t i = 0; i < s.channels.size(); ++i) o << (i ? "," : "") << s.channels[i];
        }
        if (!s.units.empty()) o << " " << s.units.size() << " units";
        if (s.channels.empty() && s.units.empty()) o << " every unit";
        o << " := " << do_value_name(s.value, s.constant) << ")\n";
    }
    return o.str();
}

namespace {

std::vector<int64_t> ranking_of(const std::vector<int64_t>& channels, const std::vector<double>& score) {
    std::vector<size_t> idx(channels.size());
    std::iota(idx.begin(), idx.end(), size_t{0});
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
    std::vector<int64_t> out;
    for (size_t i : idx) out.push_back(channels[i]);
    return out;
}

std::vector<int32_t> argmax_rows(const Tensor& logits) {
    const int64_t N = logits.dim(0), K = logits.dim(1);
    const auto l = logits.to_vector<float>();
    std::vector<int32_t> out;
    for (int64_t n = 0; n < N; ++n)
        out.push_back(static_cast<int32_t>(std::max_element(l.begin() + n * K, l.begin() + (n + 1) * K) - (l.begin() + n * K)));
    return out;
}

std::vector<double> softmax_rows(const std::vector<float>& l, int64_t N, int64_t K) {
    std::vector<double> p(l.size());
    for (int64_t n = 0; n < N; ++n) {
        const float* row = l.data() + n * K;
        const double mx = *std::max_element(row, row + K);
        double z = 0;
        for (int64_t k = 0; k < K; ++k) z += std::exp(static_cast<double>(row[k]) - mx);
        for (int64_t k = 0; k < K; ++k) p[static_cast<size_t>(n * K + k)] = std::exp(static_cast<double>(row[k]) - mx) / z;
    }
    return p;
}

}  // namespace

InterventionStudy intervention_study(layers::Layer& model, const Tensor& x, const std::vector<int32_t>& labels,
                                     const Tensor& reference, const InterventionStudyOptions& o,
                                     const std::function<void(int64_t, int64_t)>& progress) {
    GB_CHECK(x.defined() && x.rank() == 4 && x.dim(0) > 0, "intervention study: the images must be a non-empty [N, C, H, W]");
    GB_CHECK(labels.empty() || static_cast<int64_t>(labels.size()) == x.dim(0), "intervention study: ", labels.size(),
             " labels for ", x.dim(0), " images");
    GB_CHECK(o.batch > 0, "intervention study: batch must be positive");
    const Shape sample{x.dim(1), x.dim(2), x.dim(3)};
    const int64_t N = x.dim(0);
    InterventionStudy s;
    s.layer = o.layer;
    s.value = do_value_name(o.value, o.constant);
    s.images = N;
    LayerOutputs ref;
    if (o.value == DoValue::Mean || o.value == DoValue::Resample) {
        GB_CHECK(reference.defined() && reference.dim(0) > 0, "intervention study: value '", s.value, "' needs reference images");
        ref = record_outputs(model, reference, {o.layer}, o.batch);
    }
    // Validates the layer (and learns its channels) with a probe, before any long pass.
    {
        const Intervention probe(model, sample, {DoSpec{o.layer, {}, {}, DoValue::Zero, 0.f, {}}});
        (void)probe;
    }
    // The clean pass: logits, predictions; mean |a|, gradient x activation and LRP at the layer, batch by batch.
    const Tensor logits = predict(model, x, o.batch);
    const int64_t K = logits.dim(1);
    s.classes = K;
    const auto pred = argmax_rows(logits);
    const auto lv = logits.to_vector<float>();
    const auto pv = softmax_rows(lv, N, K);
    PresetOptions preset;
    const Composite composite = Composite::preset(o.composite, preset);
    std::vector<double> mean_abs, gxa, lrp;
    int64_t ch = 0, positions = 0;
    for (int64_t b = 0; b < N; b += o.batch) {
        const int64_t B = std::min(o.batch, N - b);
        const Trace t(model, x.narrow(b, B));
        const Tensor seed = t.seed({Target::predicted()});
        const Tensor& a = t.layer_output(o.layer);
        const Tensor g = t.layer_gradients(seed, {o.layer})[0];
        const Tensor r = t.relevance(composite, seed, {o.layer})[1];
        ch = a.rank() >= 2 ? a.dim(1) : 1;
        const int64_t per = a.numel() / B, plane = per / ch;
        positions = plane;
        if (mean_abs.empty()) mean_abs.assign(static_cast<size_t>(ch), 0.0), gxa = mean_abs, lrp = mean_abs;
        const auto av = a.to_vector<float>(), gv = g.to_vector<float>(), rv = r.to_vector<float>();
        for (int64_t n = 0; n < B; ++n)
            for (int64_t c = 0; c < ch; ++c)
                for (int64_t q = 0; q < plane; ++q) {
                    const auto i = static_cast<size_t>(n * per + c * plane + q);
                    mean_abs[static_cast<size_t>(c)] += std::fabs(static_cast<double>(av[i]));
                    gxa[static_cast<size_t>(c)] += static_cast<double>(gv[i]) * static_cast<double>(av[i]);
                    lrp[static_cast<size_t>(c)] += static_cast<double>(rv[i]);
                }
    }
    s.layer_channels = ch;
    s.channels = o.channels;
    if (s.channels.empty())
        for (int64_t c = 0; c < ch; ++c) s.channels.push_back(c);
    for (int64_t c : s.channels)
        GB_CHECK(c >= 0 && c < ch, "intervention study: channel ", c, " is outside the ", ch, " channels of ", o.layer);
    const int64_t C = static_cast<int64_t>(s.channels.size());
    for (int64_t c : s.channels) {
        s.mean_abs.push_back(mean_abs[static_cast<size_t>(c)] / static_cast<double>(N * positions));
        s.grad_x_act.push_back(gxa[static_cast<size_t>(c)] / static_cast<double>(N));
        s.lrp.push_back(lrp[static_cast<size_t>(c)] / static_cast<double>(N));
    }
    s.ks = o.ks;
    if (s.ks.empty()) {
        for (int64_t k = 1; k < C; k *= 2) s.ks.push_back(k);
        s.ks.push_back(C);
    }
    for (int64_t k : s.ks) GB_CHECK(k >= 1 && k <= C, "intervention study: top-k size ", k, " is outside [1, ", C, "]");
    const int64_t total = C + 5 * static_cast<int64_t>(s.ks.size());
    int64_t done = 0;

    // One channel at a time: the average causal effect on every class.
    std::vector<float> el(static_cast<size_t>(C * K)), ep(static_cast<size_t>(C * K));
    for (int64_t i = 0; i < C; ++i) {
        const Intervention iv(model, sample, {DoSpec{o.layer, {s.channels[static_cast<size_t>(i)]}, {}, o.value, o.constant, {}}}, ref,
                              o.seed);
        const auto l2 = predict(model, x, o.batch).to_vector<float>();
        const auto p2 = softmax_rows(l2, N, K);
        double cy = 0, cp = 0;
        for (int64_t k = 0; k < K; ++k) {
            double dl = 0, dp = 0;
            for (int64_t n = 0; n < N; ++n) {
                const auto j = static_cast<size_t>(n * K + k);
                dl += static_cast<double>(lv[j]) - static_cast<double>(l2[j]);
                dp += pv[j] - p2[j];
            }
            el[static_cast<size_t>(i * K + k)] = static_cast<float>(dl / static_cast<double>(N));
            ep[static_cast<size_t>(i * K + k)] = static_cast<float>(dp / static_cast<double>(N));
        }
        for (int64_t n = 0; n < N; ++n) {
            const auto j = static_cast<size_t>(n * K + pred[static_cast<size_t>(n)]);
            cy += static_cast<double>(lv[j]) - static_cast<double>(l2[j]);
            cp += pv[j] - p2[j];
        }
        s.causal.push_back(cy / static_cast<double>(N));
        s.causal_probability.push_back(cp / static_cast<double>(N));
        if (progress) progress(++done, total);
    }
    s.effect_logits = from_vector(el, Shape{C, K});
    s.effect_probabilities = from_vector(ep, Shape{C, K});

    // Rankings and their agreement with the causal one.
    s.rankings = {{"causal", ranking_of(s.channels, s.causal)},
                  {"mean |a|", ranking_of(s.channels, s.mean_abs)},
                  {"gradient x activation", ranking_of(s.channels, s.grad_x_act)},
                  {"LRP", ranking_of(s.channels, s.lrp)}};
    std::vector<int64_t> shuffled = s.channels;
    Generator g(o.seed);
    for (size_t i = shuffled.size(); i > 1; --i) std::swap(shuffled[i - 1], shuffled[static_cast<size_t>(g.below(i))]);
    s.rankings.push_back({"random", shuffled});
    auto as_float = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
    const std::vector<std::pair<std::string, const std::vector<double>*>> scores = {
        {"mean |a|", &s.mean_abs}, {"gradient x activation", &s.grad_x_act}, {"LRP", &s.lrp}};
    for (const auto& [name, v] : scores) {
        RankAgreement a;
        a.criterion = name;
        a.spearman = spearman(as_float(s.causal), as_float(*v));
        const auto& mine = s.rankings[0].second;
        std::vector<int64_t> theirs;
        for (const auto& [n, r] : s.rankings)
            if (n == name) theirs = r;
        for (int64_t k : s.ks) {
            int64_t common = 0;
            for (int64_t i = 0; i < k; ++i)
                common += std::find(theirs.begin(), theirs.begin() + k, mine[static_cast<size_t>(i)]) != theirs.begin() + k;
            a.top_k_overlap.push_back(static_cast<double>(common) / static_cast<double>(k));
        }
        s.agreement.push_back(a);
    }

    // Accuracy (and kept predictions) with each ranking's top-k intervened together.
    auto accuracy_of = [&](const std::vector<int32_t>& p) {
        int64_t right = 0;
        for (int64_t n = 0; n < N; ++n)
            right += p[static_cast<size_t>(n)] == (labels.empty() ? pred[static_cast<size_t>(n)] : labels[static_cast<size_t>(n)]);
        return static_cast<double>(right) / static_cast<double>(N);
    };
    s.accuracy = accuracy_of(pred);
    for (const auto& [name, order] : s.rankings) {
        for (int64_t k : s.ks) {
            const std::vector<int64_t> top(order.begin(), order.begin() + k);
            const Intervention iv(model, sample, {DoSpec{o.layer, top, {}, o.value, o.constant, {}}}, ref, o.seed);
            const auto p = argmax_rows(predict(model, x, o.batch));
            s.ablation_accuracy[name].push_back(accuracy_of(p));
            int64_t kept = 0;
            for (int64_t n = 0; n < N; ++n) kept += p[static_cast<size_t>(n)] == pred[static_cast<size_t>(n)];
            s.ablation_agreement[name].push_back(static_cast<double>(kept) / static_cast<double>(N));
            if (progress) progress(++done, total);
        }
    }
    return s;
}

}  // namespace gb::explain
