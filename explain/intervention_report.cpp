// The files of an intervention study (`glassbox intervene`, interventions.h: write_intervention_study).
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "explain/interventions.h"
#include "explain/plot.h"
#include "explain/report.h"
#include "io/file_util.h"
#include "io/npy.h"

namespace gb::explain {

namespace {

std::string num(double v, int digits = 4) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(digits) << v;
    return o.str();
}

std::string class_name(int64_t k, const std::vector<std::string>& names) {
    return k >= 0 && static_cast<size_t>(k) < names.size() ? names[static_cast<size_t>(k)] : std::to_string(k);
}

// Rank (1 = first) of every studied channel in a ranking, in the order of `channels`.
std::vector<int64_t> ranks(const std::vector<int64_t>& channels, const std::vector<int64_t>& order) {
    std::vector<int64_t> out;
    for (int64_t c : channels)
        for (size_t i = 0; i < order.size(); ++i)
            if (order[i] == c) out.push_back(static_cast<int64_t>(i) + 1);
    return out;
}

}  // namespace

std::string write_intervention_study(const std::string& dir, const InterventionStudy& s, const std::vector<std::string>& class_names,
                                     const std::vector<std::pair<std::string, std::string>>& info) {
    io::save_npy(dir + "/effect_logits.npy", s.effect_logits);
    io::save_npy(dir + "/effect_probabilities.npy", s.effect_probabilities);
    const size_t C = s.channels.size();
    std::vector<std::vector<int64_t>> rank_of;
    for (const auto& [name, order] : s.rankings) rank_of.push_back(ranks(s.channels, order));

    std::ostringstream csv;
    csv << std::setprecision(9) << "channel,causal_logit,causal_probability,mean_abs,grad_x_act,lrp";
    for (const auto& [name, order] : s.rankings) csv << ",rank_" << (name == "mean |a|" ? "mean_abs" : name == "gradient x activation" ? "grad_x_act" : name);
    csv << "\n";
    for (size_t i = 0; i < C; ++i) {
        csv << s.channels[i] << "," << s.causal[i] << "," << s.causal_probability[i] << "," << s.mean_abs[i] << "," << s.grad_x_act[i]
            << "," << s.lrp[i];
        for (const auto& r : rank_of) csv << "," << r[i];
        csv << "\n";
    }
    io::write_file_atomic(dir + "/channels.csv", [&](std::ostream& out) { out << csv.str(); });

    std::ostringstream ab;
    ab << std::setprecision(9) << "k";
    for (const auto& [name, order] : s.rankings) ab << ",accuracy_" << name << ",kept_" << name;
    ab << "\n";
    for (size_t j = 0; j < s.ks.size(); ++j) {
        ab << s.ks[j];
        for (const auto& [name, order] : s.rankings) ab << "," << s.ablation_accuracy.at(name)[j] << "," << s.ablation_agreement.at(name)[j];
        ab << "\n";
    }
    io::write_file_atomic(dir + "/ablation.csv", [&](std::ostream& out) { out << ab.str(); });

    Report report;
    report.title = "glassbox intervene";
    report.info = info;
    report.info.push_back({"Layer", s.layer + " (" + std::to_string(s.layer_channels) + " channels)"});
    report.info.push_back({"Intervention", "do(channel := " + s.value + ")"});
    report.info.push_back({"Images", std::to_string(s.images)});
    report.signed_colormap.clear();
    report.sequential_colormap.clear();

    ReportSection agree;
    agree.title = "Does the causal ranking agree with attribution?";
    agree.text = "Causal effect of a channel: E_x[f_y(x) - f_y(x; do(a_c = v))], y the predicted class. Compared with channel "
                 "importance (mean |a|), gradient x activation and LRP relevance at the layer (summed over positions, averaged "
                 "over images): Spearman rank correlation of the per-channel scores and the overlap of the top-k channels.";
    agree.table.push_back({"criterion", "Spearman"});
    for (int64_t k : s.ks) agree.table[0].push_back("top-" + std::to_string(k) + " overlap");
    for (const auto& a : s.agreement) {
        std::vector<std::string> row{a.criterion, num(a.spearman, 3)};
        for (double v : a.top_k_overlap) row.push_back(num(v, 2));
        agree.table.push_back(row);
    }
    report.sections.push_back(agree);

    ReportSection abl;
    abl.title = "Accuracy with the top-k channels intervened on together";
    abl.text = "Accuracy without intervention: " + num(s.accuracy, 4) + ". Each ranking's first k channels set by the same "
               "intervention; a better ranking of what the model relies on loses more accuracy.";
    abl.table.push_back({"k"});
    for (const auto& [name, order] : s.rankings) abl.table[0].push_back(name);
    LinePlot plot;
    plot.title = "accuracy with the top-k channels intervened on";
    plot.x_label = "k";
    plot.y_label = "accuracy";
    for (const auto& [name, order] : s.rankings) {
        Series ser;
        ser.label = name;
        for (size_t j = 0; j < s.ks.size(); ++j) {
            ser.x.push_back(static_cast<double>(s.ks[j]));
            ser.y.push_back(s.ablation_accuracy.at(name)[j]);
        }
        plot.series.push_back(ser);
    }
    for (size_t j = 0; j < s.ks.size(); ++j) {
        std::vector<std::string> row{std::to_string(s.ks[j])};
        for (const auto& [name, order] : s.rankings) row.push_back(num(s.ablation_accuracy.at(name)[j], 4));
        abl.table.push_back(row);
    }
    const std::string svg = render_line_plot_svg(plot);
    abl.svg_figures.push_back({"accuracy against k per ranking", svg});
    io::write_file_atomic(dir + "/ablation.svg", [&](std::ostream& out) { out << svg; });
    report.sections.push_back(abl);

    ReportSection chans;
    chans.title = "Channels, by causal effect";
    chans.table.push_back({"channel", "causal effect (logit)", "(probability)", "mean |a|", "gradient x activation", "LRP",
                           "class it supports most"});
    const auto el = s.effect_logits.to_vector<float>();
    for (int64_t c : s.rankings[0].second) {
        size_t i = 0;
        while (s.channels[i] != c) ++i;
        int64_t best = 0;
        for (int64_t k = 1; k < s.classes; ++k)
            if (el[i * static_cast<size_t>(s.classes) + static_cast<size_t>(k)] > el[i * static_cast<size_t>(s.classes) + static_cast<size_t>(best)])
                best = k;
        chans.table.push_back({std::to_string(c), num(s.causal[i]), num(s.causal_probability[i]), num(s.mean_abs[i]),
                               num(s.grad_x_act[i]), num(s.lrp[i]),
                               class_name(best, class_names) + " (" + num(el[i * static_cast<size_t>(s.classes) + static_cast<size_t>(best)], 3) + ")"});
    }
    report.sections.push_back(chans);
    report.methods = {{"do-operator", "Pearl 2009; on network units: Chattopadhyay et al. 2019, Neural network attributions: a causal "
                                      "perspective; single-unit ablation: Morcos et al. 2018"},
                      {"gradient x activation", "first-order Taylor estimate of the effect of zeroing a channel (Molchanov et al. 2017)"},
                      {"LRP", "relevance at the layer's output (Bach et al. 2015; Montavon et al. 2019)"}};
    const std::string html = dir + "/report.html";
    save_html(html, report);

    nlohmann::json agreement = nlohmann::json::array();
    for (const auto& a : s.agreement)
        agreement.push_back({{"criterion", a.criterion}, {"spearman", a.spearman}, {"top_k_overlap", a.top_k_overlap}});
    nlohmann::json ablation = nlohmann::json::object();
    for (const auto& [name, v] : s.ablation_accuracy) ablation[name] = v;
    nlohmann::json run = {{"command", "intervene"},  {"glassbox_version", GB_VERSION}, {"layer", s.layer},
                          {"value", s.value},        {"images", s.images},           {"channels", s.channels},
                          {"ks", s.ks},              {"accuracy", s.accuracy},       {"agreement", agreement},
                          {"ablation_accuracy", ablation}};
    for (const auto& [k, v] : info) run["info"][k] = v;
    io::write_file_atomic(dir + "/run.json", [&](std::ostream& out) { out << run.dump(2) << "\n"; });
    return html;
}

}  // namespace gb::explain
