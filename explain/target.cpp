#include "explain/target.h"

#include "core/error.h"
#include "core/factory.h"

namespace gb::explain {

namespace {
int32_t parse_class(const std::string& s, const std::string& whole) {
    GB_CHECK(!s.empty() && s.find_first_not_of("0123456789") == std::string::npos, "bad target '", whole,
             "': expected pred, a class index, or A-B (class A versus class B)");
    return static_cast<int32_t>(std::stol(s));
}

const Target& pick(const std::vector<Target>& targets, int64_t n, int64_t N) {
    GB_CHECK(targets.size() == 1 || static_cast<int64_t>(targets.size()) == N, "explain: ", targets.size(),
             " targets for a batch of ", N, " (give one for all or one per sample)");
    return targets.size() == 1 ? targets[0] : targets[static_cast<size_t>(n)];
}
}  // namespace

Target Target::parse(const std::string& text) {
    if (text == "pred" || text == "predicted") return predicted();
    const auto dash = text.find('-');
    if (dash == std::string::npos) return of(parse_class(text, text));
    return contrast(parse_class(text.substr(0, dash), text), parse_class(text.substr(dash + 1), text));
}

std::string Target::str() const {
    switch (kind) {
        case Kind::Predicted: return "pred";
        case Kind::Class: return std::to_string(cls);
        case Kind::Contrast: return std::to_string(cls) + "-" + std::to_string(other);
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
