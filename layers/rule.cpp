#include "layers/rule.h"

#include <limits>
#include <sstream>

#include "core/factory.h"
#include "kernels/backend.h"

namespace gb::layers {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

Tensor clamped(const Tensor& t, float lo, float hi) {
    Tensor out(t.shape(), DType::Float32, t.device());
    kernels::backend_for(t.device()).clamp(t.numel(), lo, hi, t.data<float>(), out.data<float>());
    return out;
}
Tensor positive(const Tensor& t) { return clamped(t, 0.f, kInf); }
Tensor negative(const Tensor& t) { return clamped(t, -kInf, 0.f); }
Tensor squared(const Tensor& t) {
    Tensor out(t.shape(), DType::Float32, t.device());
    kernels::backend_for(t.device()).mul(t.numel(), t.data<float>(), t.data<float>(), out.data<float>());
    return out;
}
// t + g * part(t)
Tensor plus_scaled(const Tensor& t, const Tensor& part, float g) {
    Tensor out = t.clone();
    kernels::backend_for(t.device()).axpy(t.numel(), g, part.data<float>(), out.data<float>());
    return out;
}

// The bound `b` (a scalar tensor, one value per channel, or the input's shape) spread over x's shape.
Tensor spread_bound(const Tensor& b, float scalar, const Tensor& x) {
    if (!b.defined()) return full(x.shape(), scalar, x.device());
    if (b.shape() == x.shape()) return b.to(x.device());
    const std::vector<float> v = b.to_vector<float>();
    if (v.size() == 1) return full(x.shape(), v[0], x.device());
    GB_CHECK(x.rank() >= 2 && static_cast<int64_t>(v.size()) == x.dim(1), "ZBox: bound of shape ", b.shape().str(),
             " fits neither a scalar, the ", x.rank() >= 2 ? x.dim(1) : 0, " channels nor the input shape ",
             x.shape().str());
    const int64_t C = x.dim(1), inner = x.shape().prod(2, x.rank()), outer = x.dim(0);
    std::vector<float> out(static_cast<size_t>(x.numel()));
    for (int64_t n = 0; n < outer; ++n)
        for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < inner; ++i) out[static_cast<size_t>((n * C + c) * inner + i)] = v[static_cast<size_t>(c)];
    return from_vector(out, x.shape(), x.device());
}

// Parameter modifier `fn` applied to the weight; the bias gets `fn` too, or is dropped.
std::function<Tensor(const Tensor&, bool)> params(std::function<Tensor(const Tensor&)> fn, bool keep_bias) {
    return [fn = std::move(fn), keep_bias](const Tensor& p, bool is_bias) {
        if (is_bias && !keep_bias) return Tensor();
        return fn(p);
    };
}

// A term with input modifier `in` and parameter modifier `fn` (bias kept or dropped); the
// cache tag names both, so cached parameters of one form never stand in for the other.
RuleTerm term(std::function<Tensor(const Tensor&)> in, std::function<Tensor(const Tensor&)> fn, bool keep_bias,
              const std::string& tag, float weight = 1.f, RuleTerm::Part part = RuleTerm::Part::Custom) {
    RuleTerm t;
    t.input = std::move(in);
    t.part = part;
    t.param = params(std::move(fn), keep_bias);
    t.cache_tag = tag + (keep_bias ? "" : "/no-bias");
    t.weight = weight;
    return t;
}

std::string fmt(float v) {
    std::ostringstream s;
    s << v;
    return s.str();
}

}  // namespace

Rule Rule::pass() { Rule r; r.kind = Kind::Pass; return r; }
Rule Rule::gradient() { Rule r; r.kind = Kind::Gradient; return r; }
Rule Rule::guided_backprop() { Rule r; r.kind = Kind::GuidedBackprop; return r; }
Rule Rule::deconvnet() { Rule r; r.kind = Kind::Deconvnet; return r; }

Rule Rule::deeplift_rescale(Tensor reference_input, Tensor reference_output) {
    GB_CHECK(reference_input.defined() && reference_output.defined() &&
                 reference_input.shape() == reference_output.shape(),
             "DeepLiftRescale rule: needs the reference's input and output at the layer, of one shape");
    Rule r;
    r.kind = Kind::DeepLiftRescale;
    r.reference_input = std::move(reference_input);
    r.reference_output = std::move(reference_output);
    return r;
}

bool Rule::for_rectifiers() const {
    return kind == Kind::GuidedBackprop || kind == Kind::Deconvnet || kind == Kind::DeepLiftRescale;
}

Rule Rule::epsilon_rule(float eps) {
    GB_CHECK(eps >= 0.f, "Epsilon rule: epsilon must be >= 0, got ", eps);
    Rule r;
    r.kind = Kind::Epsilon;
    r.epsilon = eps;
    return r;
}

Rule Rule::zplus(float stabilizer) { Rule r; r.kind = Kind::ZPlus; r.epsilon = stabilizer; return r; }

Rule Rule::alpha_beta(float alpha, float beta, float stabilizer) {
    GB_CHECK(alpha >= 0.f && beta >= 0.f && std::abs(alpha - beta - 1.f) < 1e-6f,
             "AlphaBeta rule: needs alpha, beta >= 0 with alpha - beta = 1, got alpha=", alpha, " beta=", beta);
    Rule r;
    r.kind = Kind::AlphaBeta;
    r.alpha = alpha;
    r.beta = beta;
    r.epsilon = stabilizer;
    return r;
}

Rule Rule::gamma_rule(float gamma, float stabilizer) {
    GB_CHECK(gamma >= 0.f, "Gamma rule: gamma must be >= 0, got ", gamma);
    Rule r;
    r.kind = Kind::Gamma;
    r.gamma = gamma;
    r.epsilon = stabilizer;
    return r;
}

Rule Rule::flat(float stabilizer) { Rule r; r.kind = Kind::Flat; r.epsilon = stabilizer; return r; }
Rule Rule::wsquare(float stabilizer) { Rule r; r.kind = Kind::WSquare; r.epsilon = stabilizer; return r; }
Rule Rule::norm(float stabilizer) { Rule r; r.kind = Kind::Norm; r.epsilon = stabilizer; return r; }

Rule Rule::zbox(float low, float high, float stabilizer) {
    GB_CHECK(low <= high, "ZBox rule: low ", low, " is above high ", high);
    Rule r;
    r.kind = Kind::ZBox;
    r.low = low;
    r.high = high;
    r.epsilon = stabilizer;
    return r;
}

Rule Rule::zbox(Tensor low, Tensor high, float stabilizer) {
    GB_CHECK(low.defined() && high.defined() && low.shape() == high.shape(),
             "ZBox rule: low and high bounds must be tensors of the same shape");
    Rule r = zbox(0.f, 0.f, stabilizer);
    r.low_tensor = std::move(low);
    r.high_tensor = std::move(high);
    return r;
}

Rule Rule::custom_rule(CustomRule rule) {
    GB_CHECK(!rule.groups.empty(), "custom rule '", rule.name, "': needs at least one group of terms");
    Rule r;
    r.kind = Kind::Custom;
    r.epsilon = rule.stabilizer;
    r.custom = std::make_shared<const CustomRule>(std::move(rule));
    return r;
}

CustomRule Rule::expand() const {
    CustomRule c;
    c.stabilizer = epsilon;
    c.name = str();
    const auto pos_in = [](const Tensor& x) { return positive(x); };
    const auto neg_in = [](const Tensor& x) { return negative(x); };
    constexpr auto Pos = RuleTerm::Part::Positive, Neg = RuleTerm::Part::Negative;
    switch (kind) {
        case Kind::Epsilon:
        case Kind::Norm:
            c.groups = {RuleGroup{{RuleTerm{}}, 1.f, 0}};
            return c;
        case Kind::ZPlus:
        case Kind::AlphaBeta: {
            // z+ = W+ x+ + W- x- + b+ ; z- = W- x+ + W+ x- + b-
            RuleGroup plus{{term(pos_in, positive, true, "pos", 1.f, Pos), term(neg_in, negative, false, "neg", 1.f, Neg)},
                           kind == Kind::ZPlus ? 1.f : alpha, 0};
            c.groups = {plus};
            if (kind == Kind::AlphaBeta && beta != 0.f)
                c.groups.push_back(RuleGroup{
                    {term(pos_in, negative, true, "neg", 1.f, Pos), term(neg_in, positive, false, "pos", 1.f, Neg)}, -beta, 0});
            return c;
        }
        case Kind::Gamma: {
            const float g = gamma;
            auto up = [g](const Tensor& p) { return plus_scaled(p, positive(p), g); };    // W + g W+
            auto down = [g](const Tensor& p) { return plus_scaled(p, negative(p), g); };  // W + g W-
            const std::string tg = "gamma" + fmt(g);
            c.groups = {RuleGroup{{term(pos_in, up, true, tg + "+", 1.f, Pos), term(neg_in, down, false, tg + "-", 1.f, Neg)}, 1.f, +1},
                        RuleGroup{{term(pos_in, down, true, tg + "-", 1.f, Pos), term(neg_in, up, false, tg + "+", 1.f, Neg)}, 1.f, -1}};
            return c;
        }
        case Kind::Flat:
            c.multiply_by_input = false;
            c.groups = {RuleGroup{{term([](const Tensor& x) { return ones(x.shape(), x.device()); },
                                        [](const Tensor& p) { return ones(p.shape(), p.device()); }, false, "ones")},
                                  1.f, 0}};
            return c;
        case Kind::WSquare:
            c.multiply_by_input = false;
            c.groups = {RuleGroup{{term([](const Tensor& x) { return ones(x.shape(), x.device()); }, squared, true, "square")},
                                  1.f, 0}};
            return c;
        case Kind::ZBox: {
            const Tensor lt = low_tensor, ht = high_tensor;
            const float lo = low, hi = high;
            // z = W x + b - (W+ l + b+) - (W- h + b-)
            c.groups = {RuleGroup{{RuleTerm{},
                                   term([lt, lo](const Tensor& x) { return spread_bound(lt, lo, x); }, positive, true, "pos", -1.f),
                                   term([ht, hi](const Tensor& x) { return spread_bound(ht, hi, x); }, negative, true, "neg", -1.f)},
                                  1.f, 0}};
            return c;
        }
        case Kind::Custom:
            return *custom;
        case Kind::Pass:
        case Kind::Gradient:
        case Kind::GuidedBackprop:
        case Kind::Deconvnet:
        case Kind::DeepLiftRescale:
            break;
    }
    GB_FAIL("rule ", str(), " has no linear-layer form");
}

std::string Rule::str() const {
    switch (kind) {
        case Kind::Pass: return "Pass";
        case Kind::Gradient: return "Gradient";
        case Kind::Epsilon: return epsilon == 0.f ? "LRP-0" : "Epsilon(" + fmt(epsilon) + ")";
        case Kind::ZPlus: return "ZPlus";
        case Kind::AlphaBeta: return "AlphaBeta(" + fmt(alpha) + ", " + fmt(beta) + ")";
        case Kind::Gamma: return "Gamma(" + fmt(gamma) + ")";
        case Kind::Flat: return "Flat";
        case Kind::WSquare: return "WSquare";
        case Kind::ZBox:
            return low_tensor.defined() ? "ZBox(tensor bounds)" : "ZBox(" + fmt(low) + ", " + fmt(high) + ")";
        case Kind::Norm: return "Norm";
        case Kind::Custom: return custom ? custom->name : "custom";
        case Kind::GuidedBackprop: return "GuidedBackprop";
        case Kind::Deconvnet: return "Deconvnet";
        case Kind::DeepLiftRescale: return "DeepLiftRescale";
    }
    return "?";
}

}  // namespace gb::layers
