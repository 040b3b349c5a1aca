#include "explain/target.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "core/error.h"
#include "core/factory.h"
#include "core/parse.h"

namespace gb::explain {

namespace {
const char* kTargetForms = "expected pred, a class name or index, or A-B (class A versus class B)";

// The class `s` names: an exact class name first, then a decimal index.
std::optional<int32_t> lookup(const std::string& s, const std::vector<std::string>& names) {
    for (size_t k = 0; k < names.size(); ++k)
        if (names[k] == s) return static_cast<int32_t>(k);
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    // A class index: the model's class count is checked when the target is resolved.
    return static_cast<int32_t>(parse_int(s, 0, INT32_MAX, "target class index"));
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// Class names close to `s` (case-insensitive: equal, containing or contained, or a few edits away), best first.
std::vector<std::string> close_names(const std::string& s, const std::vector<std::string>& names) {
    std::vector<std::pair<size_t, std::string>> scored;
    const std::string ls = lower(s);
    for (const auto& n : names) {
        const std::string ln = lower(n);
        const size_t d = edit_distance(ls, ln);
        const bool part = std::min(ls.size(), ln.size()) >= 3 && (ln.find(ls) != std::string::npos || ls.find(ln) != std::string::npos);
        if (part || d <= std::max<size_t>(2, ln.size() / 3)) scored.emplace_back(part ? 0 : d, n);
    }
    std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> out;
    for (size_t i = 0; i < scored.size() && i < 5; ++i) out.push_back(scored[i].second);
    return out;
}

std::string quoted_list(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "'" : ", '") + s + "'";
    return out;
}

const Target& pick(const std::vector<Target>& targets, int64_t n, int64_t N) {
    GB_CHECK(targets.size() == 1 || static_cast<int64_t>(targets.size()) == N, "explain: ", targets.size(),
             " targets for a batch of ", N, " (give one for all or one per sample)");
    return targets.size() == 1 ? targets[0] : targets[static_cast<size_t>(n)];
}
}  // namespace

Target Target::parse(const std::string& text, const std::vector<std::string>& class_names) {
    if (text == "pred" || text == "predicted") return predicted();
    if (const auto c = lookup(text, class_names)) return of(*c);
    std::vector<Target> found;
    for (size_t dash = text.find('-'); dash != std::string::npos; dash = text.find('-', dash + 1)) {
        const auto a = lookup(text.substr(0, dash), class_names), b = lookup(text.substr(dash + 1), class_names);
        if (a && b) found.push_back(contrast(*a, *b));
    }
    if (found.size() == 1) return found[0];
    if (found.size() > 1) {
        std::string options;
        for (const auto& t : found) options += (options.empty() ? "" : " or ") + t.describe(class_names);
        GB_FAIL("ambiguous target '", text, "': it reads as ", options, "; give class indices (A-B) instead");
    }
    if (class_names.empty()) GB_FAIL("bad target '", text, "': ", kTargetForms);
    // Suggestions: for a split with one side a class, names close to the other side; else
    // names close to the whole text; else close to any side of a split.
    std::vector<std::string> close;
    auto add_close = [&](const std::string& part) {
        for (const auto& n : close_names(part, class_names))
            if (std::find(close.begin(), close.end(), n) == close.end()) close.push_back(n);
    };
    for (size_t dash = text.find('-'); dash != std::string::npos; dash = text.find('-', dash + 1)) {
        const std::string a = text.substr(0, dash), b = text.substr(dash + 1);
        if (lookup(a, class_names).has_value() != lookup(b, class_names).has_value()) add_close(lookup(a, class_names) ? b : a);
    }
    if (close.empty()) add_close(text);
    for (size_t dash = text.find('-'); dash != std::string::npos && close.empty(); dash = text.find('-', dash + 1)) {
        add_close(text.substr(0, dash));
        add_close(text.substr(dash + 1));
    }
    if (!close.empty()) GB_FAIL("unknown target '", text, "': no class has that name; close names: ", quoted_list(close), " (", kTargetForms, ")");
    if (class_names.size() <= 20) GB_FAIL("unknown target '", text, "': no class has that name; the classes are ", quoted_list(class_names), " (", kTargetForms, ")");
    GB_FAIL("unknown target '", text, "': none of the ", class_names.size(), " class names matches (", kTargetForms, ")");
}

std::string Target::str() const {
    switch (kind) {
        case Kind::Predicted: return "pred";
        case Kind::Class: return std::to_string(cls);
        case Kind::Contrast: return std::to_string(cls) + "-" + std::to_string(other);
    }
    return "?";
}

std::string Target::describe(const std::vector<std::string>& class_names) const {
    auto name = [&](int32_t c) {
        const bool known = c >= 0 && static_cast<size_t>(c) < class_names.size() && class_names[static_cast<size_t>(c)] != std::to_string(c);
        return known ? class_names[static_cast<size_t>(c)] + " (" + std::to_string(c) + ")" : std::to_string(c);
    };
    switch (kind) {
        case Kind::Predicted: return "pred";
        case Kind::Class: return name(cls);
        case Kind::Contrast: return name(cls) + " versus " + name(other);
    }
    return "?";
}

std::vector<int32_t> resolve_classes(const std::vector<Target>& targets, const Tensor& logits) {
    GB_CHECK(logits.rank() == 2, "explain: logits must be [N, classes], got ", logits.shape().str());
    const int64_t N = logits.dim(0), K = logits.dim(1);
    const std::vector<float> l = logits.to_vector<float>();
    std::vector<int32_t> out(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) {
        const Target& t = pick(targets, n, N);
        int32_t c = t.cls;
        if (t.kind == Target::Kind::Predicted) {
            c = 0;
            for (int64_t k = 1; k < K; ++k)
                if (l[static_cast<size_t>(n * K + k)] > l[static_cast<size_t>(n * K + c)]) c = static_cast<int32_t>(k);
        }
        GB_CHECK(c >= 0 && c < K, "explain: target class ", c, " is outside [0, ", K, ")");
        GB_CHECK(t.kind != Target::Kind::Contrast || (t.other >= 0 && t.other < K), "explain: contrast class ",
                 t.other, " is outside [0, ", K, ")");
        out[static_cast<size_t>(n)] = c;
    }
    return out;
}

Tensor output_seed(const std::vector<Target>& targets, const Tensor& logits, bool times_logit) {
    const std::vector<int32_t> cls = resolve_classes(targets, logits);
    const int64_t N = logits.dim(0), K = logits.dim(1);
    const std::vector<float> l = logits.to_vector<float>();
    std::vector<float> seed(static_cast<size_t>(N * K), 0.f);
    for (int64_t n = 0; n < N; ++n) {
        const Target& t = pick(targets, n, N);
        const size_t at = static_cast<size_t>(n * K + cls[static_cast<size_t>(n)]);
        seed[at] = times_logit ? l[at] : 1.f;
        if (t.kind == Target::Kind::Contrast) seed[static_cast<size_t>(n * K + t.other)] -= 1.f;
    }
    return from_vector(seed, logits.shape(), logits.device());
}

}  // namespace gb::explain
