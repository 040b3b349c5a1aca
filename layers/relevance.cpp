// The generic LRP path for linear-like layers (see rule.h), the rectifier rules
// (RectifierNode::relevance_with: guided backprop, DeconvNet, DeepLIFT) and the cache of
// tensors derived from parameters (modified parameters W+, W-, W + gW+ ...;
// BatchNorm-merged weights), keyed by the storages and versions they were
// computed from and a tag, so a second explanation reuses them until a source
// changes or is freed.
//
// linear_like_relevance(f, R, rule) evaluates rule.h's formula on a rule's term form (Rule::expand()):
//   for each group g:  Z_g = sum_k c_k f(x_k; W_k, b_k),  s_g = mask_g(R) / stabilise(Z_g)
//   R_in = sum_g coef_g sum_k c_k [x_k *] f^T_{W_k}(s_g)
// with the layer's own kernels (LinearLike::forward_with, input_grad_with), so one code serves Conv2d, Linear and
// the average pools. Its shortcuts skip work without changing the formula:
//   - a term or group that adds exactly nothing is skipped: x's negative part when x has no negative element (after
//     a ReLU), an all-zero modified input without bias, a group whose masked relevance is all zero;
//   - x's positive part, on such an input, is x itself (no copy);
//   - a single plain term divides by the node's recorded output (LinearLike::saved_output) instead of a forward;
//   - a single term on the saved input with modified parameters (z+ after a ReLU, Gamma's W+ pass) divides by the
//     forward an earlier pass of the node computed (LinearLike::remembered_forward), and remembers the one it
//     computes: a second explanation from one trace runs no forward;
//   - a single term of unit weight uses the layer's fused relevance_term where it has one (a convolution on the CPU),
//     given the recorded or remembered forward when there is one;
//   - Gamma on such an input, with a recorded output, gets both denominators from one forward (gamma_nonnegative).
// The skips and x itself are exact; the recorded output, a remembered forward and the fused pass are bit for bit
// what the plain path computes (a canonizer's recorded output: up to rounding); Gamma's denominators are equal by
// linearity, up to rounding.
// The zero and sign tests look at CPU tensors only; elsewhere they answer "no", which only forgoes a shortcut.
// A modified parameter (W+, W-, W + gW+ ...) is computed once per (storage, offset, version) of the parameter and
// tag, and shared by every pass and trace until the parameter changes or is freed: explaining never writes a
// parameter, and an optimizer step changes its version.
#include <algorithm>
#include <atomic>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <tuple>

#include "core/factory.h"
#include "kernels/backend.h"
#include "layers/layer.h"
#include "layers/layer_node.h"

namespace gb::layers {

namespace {

struct CacheKey {
    std::vector<std::tuple<const Storage*, int64_t, uint64_t>> sources;  // storage, offset, version
    std::string tag;
    bool operator<(const CacheKey& o) const { return std::tie(sources, tag) < std::tie(o.sources, o.tag); }
};

struct CacheEntry {
    std::vector<std::weak_ptr<Storage>> alive;
    std::vector<Tensor> value;
};

std::mutex g_cache_mutex;
std::map<CacheKey, CacheEntry> g_cache;

std::atomic<int64_t> g_rule_forwards{0};

// f(x; w, b) for a rule, counted.
Tensor counted_forward(const LinearLike& f, const Tensor& x, const Tensor& w, const Tensor& b) {
    g_rule_forwards.fetch_add(1, std::memory_order_relaxed);
    return f.forward_with(x, w, b);
}

// make(), or what it returned for the same sources (storage, offset, version) and tag.
std::vector<Tensor> cached(const std::vector<Tensor>& sources, const std::string& tag,
                           const std::function<std::vector<Tensor>()>& make) {
    CacheKey key{{}, tag};
    for (const Tensor& t : sources) key.sources.emplace_back(t.impl().storage.get(), t.impl().offset, t.version());
    {
        std::lock_guard<std::mutex> lock(g_cache_mutex);
        auto it = g_cache.find(key);
        // A freed storage's address may be reused by a new storage: an entry counts only while every one
        // of its sources is alive.
        if (it != g_cache.end() &&
            std::none_of(it->second.alive.begin(), it->second.alive.end(), [](const auto& w) { return w.expired(); }))
            return it->second.value;
    }
    // make() runs without the lock (it is a pass over a weight; other lookups need not wait). Two threads may both
    // compute the same entry; the values are equal and the last insert wins.
    std::vector<Tensor> value = make();
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    // Pruned on every insert, so the cache does not grow with the parameter versions a training run goes through.
    for (auto it = g_cache.begin(); it != g_cache.end();) {  // drop entries of freed or changed sources
        bool stale = false;
        for (size_t i = 0; i < it->second.alive.size() && !stale; ++i) {
            const auto alive = it->second.alive[i].lock();
            stale = !alive || alive->version() != std::get<2>(it->first.sources[i]);
        }
        it = stale ? g_cache.erase(it) : std::next(it);
    }
    CacheEntry entry{{}, value};
    for (const Tensor& t : sources) entry.alive.push_back(t.impl().storage);
    g_cache[key] = std::move(entry);
    return value;
}

// The term's modified parameter, from the cache when the term names a tag.
Tensor modified_param(const RuleTerm& t, const Tensor& p, bool is_bias) {
    if (!p.defined() || !t.param) return p;
    if (t.cache_tag.empty()) return t.param(p, is_bias);
    return cached({p}, t.cache_tag + (is_bias ? "/bias" : "/weight"), [&] { return std::vector<Tensor>{t.param(p, is_bias)}; })[0];
}

Tensor same_shape(const Tensor& t) { return Tensor(t.shape(), DType::Float32, t.device()); }

// True when every element is 0 (checked on the CPU only; elsewhere false, which is always safe).
bool all_zero(const Tensor& t) {
    if (!t.device().is_cpu()) return false;
    const float* p = t.data<float>();
    return std::all_of(p, p + t.numel(), [](float v) { return v == 0.f; });
}

// True when no element is negative or NaN (CPU only; elsewhere false, always safe).
// One branch-free pass, which the compiler vectorises (std::all_of stops early
// but checks every element on its own).
bool no_negative(const Tensor& t) {
    if (!t.device().is_cpu()) return false;
    const float* p = t.data<float>();
    const int64_t n = t.numel();
    bool ok = true;
    for (int64_t i0 = 0; i0 < n && ok; i0 += 4096) {
        const int64_t i1 = std::min(n, i0 + 4096);
        int bad = 0;
#pragma omp simd reduction(| : bad)
        for (int64_t i = i0; i < i1; ++i) bad |= !(p[i] >= 0.f);
        ok = bad == 0;
    }
    return ok;
}

}  // namespace

std::string LayerNode::label() const { return layer_ ? name() + " of " + layer_->describe() : name(); }

std::vector<Tensor> LayerNode::relevance_with(const Tensor& relevance_out, const Rule& rule) {
    if (rule.kind == Rule::Kind::Pass) {
        std::vector<Tensor> out(next().size());
        GB_CHECK(!out.empty(), name(), ": Pass rule on a node without inputs");
        out[0] = relevance_out;
        return out;
    }
    GB_CHECK(rule.kind == Rule::Kind::Gradient, "rule ", rule.str(), " cannot be applied to ", label(),
             ": only linear-like layers (Conv2d, Linear, average pooling) take LRP rules, and only rectifiers (ReLU) "
             "GuidedBackprop, Deconvnet and DeepLiftRescale; use Pass or Gradient here");
    return backward(relevance_out);
}

namespace {
thread_local bool g_keep_for_rules = false;
}  // namespace

KeepForRules::KeepForRules() : previous_(g_keep_for_rules) { g_keep_for_rules = true; }
KeepForRules::~KeepForRules() { g_keep_for_rules = previous_; }
bool KeepForRules::active() { return g_keep_for_rules; }

// The rectifier rules (rule.h), each a few element-wise primitives (no host loop, any backend):
//   Deconvnet       max(R, 0)
//   GuidedBackprop  backward(max(R, 0)), i.e. max(R, 0) where x > 0
//   DeepLiftRescale R (y - y0) / (x - x0), and backward(R) (R where x > 0) where |x - x0| < 1e-10.
// DeepLIFT's selection is exact: t = 1e-10 - |x - x0| is positive exactly where |x - x0| < 1e-10 (a difference of
// two floats is zero only when they are equal), lrp_mask_sign(+1, t, v) keeps v there, and v - mask(v) + mask(w)
// gives v or w bit for bit; the quotient is the plain one (lrp_divide with eps 0, 0 where x = x0, which is then
// not selected). So the result is exactly what the per-element formula gives.
std::vector<Tensor> RectifierNode::relevance_with(const Tensor& relevance_out, const Rule& rule) {
    if (!rule.for_rectifiers()) return LayerNode::relevance_with(relevance_out, rule);
    const Tensor& r = relevance_out;
    auto& be = kernels::backend_for(r.device());
    const int64_t n = r.numel();
    if (rule.kind != Rule::Kind::DeepLiftRescale) {
        Tensor pos = same_shape(r);
        be.relu_forward(n, r.data<float>(), pos.data<float>());
        if (rule.kind == Rule::Kind::Deconvnet) return {pos};
        return backward(pos);
    }
    const Tensor x = saved_input(), y = saved_output();
    GB_CHECK(x.defined(), label(), ": DeepLiftRescale needs the layer's input, which is kept only when the forward "
             "pass is recorded for explanations (explain::Trace, layers::KeepForRules)");
    check_shape(rule.reference_input, x.shape(), "DeepLiftRescale reference input");
    check_shape(rule.reference_output, x.shape(), "DeepLiftRescale reference output");
    check_shape(r, x.shape(), "relevance at a rectifier output");
    const Tensor x0 = rule.reference_input.to(x.device()), y0 = rule.reference_output.to(x.device());
    Tensor d = same_shape(x), out = same_shape(x), t = same_shape(x), neg = same_shape(x);
    be.sub(n, x.data<float>(), x0.data<float>(), d.data<float>());
    be.sub(n, y.data<float>(), y0.data<float>(), out.data<float>());
    be.lrp_divide(n, 0.f, out.data<float>(), d.data<float>(), out.data<float>());  // (y - y0) / (x - x0)
    be.mul(n, r.data<float>(), out.data<float>(), out.data<float>());
    // t = 1e-10 - |d|, |d| = max(d, 0) - min(d, 0)
    const float inf = std::numeric_limits<float>::infinity();
    be.clamp(n, 0.f, inf, d.data<float>(), t.data<float>());
    be.clamp(n, -inf, 0.f, d.data<float>(), neg.data<float>());
    be.sub(n, t.data<float>(), neg.data<float>(), t.data<float>());
    be.fill(n, 1e-10f, d.data<float>());
    be.sub(n, d.data<float>(), t.data<float>(), t.data<float>());
    // out - out where t > 0, plus the gradient where t > 0
    be.lrp_mask_sign(n, +1, t.data<float>(), out.data<float>(), neg.data<float>());
    be.sub(n, out.data<float>(), neg.data<float>(), out.data<float>());
    const Tensor g = backward(r)[0];
    be.lrp_mask_sign(n, +1, t.data<float>(), g.data<float>(), neg.data<float>());
    be.add(n, out.data<float>(), neg.data<float>(), out.data<float>());
    return {out};
}

std::vector<Tensor> LinearLikeNode::relevance_with(const Tensor& relevance_out, const Rule& rule) {
    if (rule.kind == Rule::Kind::Pass || rule.kind == Rule::Kind::Gradient || rule.for_rectifiers())
        return LayerNode::relevance_with(relevance_out, rule);
    std::vector<Tensor> out(next().size());
    out[0] = linear_like_relevance(*this, relevance_out, rule);
    return out;
}

namespace {

// f with its parameters replaced: what a canonizer shows the rule path.
class WithParams : public LinearLike {
public:
    WithParams(const LinearLike& f, const MergedParams& p) : f_(f), p_(p) {}
    Tensor forward_with(const Tensor& x, const Tensor& w, const Tensor& b) const override { return f_.forward_with(x, w, b); }
    Tensor input_grad_with(const Tensor& s, const Tensor& w) const override { return f_.input_grad_with(s, w); }
    Tensor relevance_term(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& r, float eps,
                          const Tensor& z_known, Tensor z_keep) const override {
        return f_.relevance_term(x, w, b, r, eps, z_known, z_keep);
    }
    Tensor remembered_forward(const Tensor& w, const Tensor& b) const override { return f_.remembered_forward(w, b); }
    void remember_forward(const Tensor& w, const Tensor& b, const Tensor& z) const override {
        f_.remember_forward(w, b, z);
    }
    const Tensor& saved_input() const override { return f_.saved_input(); }
    Tensor saved_weight() const override { return p_.weight; }
    Tensor saved_bias() const override { return p_.bias; }
    Tensor saved_output() const override {
        return p_.output.defined() && p_.output.version() == p_.output_version ? p_.output : Tensor();
    }

private:
    const LinearLike& f_;
    const MergedParams& p_;
};

}  // namespace

std::vector<Tensor> LinearLikeNode::relevance_with(const Tensor& relevance_out, const Rule& rule,
                                                   const MergedParams& params) {
    if (rule.kind == Rule::Kind::Pass || rule.for_rectifiers()) return LayerNode::relevance_with(relevance_out, rule);
    std::vector<Tensor> out(next().size());
    if (rule.kind == Rule::Kind::Gradient)
        out[0] = input_grad_with(relevance_out, params.weight);
    else
        out[0] = linear_like_relevance(WithParams(*this, params), relevance_out, rule);
    return out;
}

namespace {

// t is `kept` (the same tensor: storage and offset) at version `version`; both undefined also counts.
bool same_tensor(const Tensor& t, const Tensor& kept, uint64_t version) {
    if (!t.defined() || !kept.defined()) return t.defined() == kept.defined();
    return t.impl().storage == kept.impl().storage && t.impl().offset == kept.impl().offset &&
           t.shape() == kept.shape() && t.version() == version;
}

}  // namespace

Tensor LinearLikeNode::remembered_forward(const Tensor& w, const Tensor& b) const {
    const Tensor& x = saved_input();
    if (!x.defined()) return Tensor();
    std::lock_guard<std::mutex> lock(remembered_mutex_);
    for (const Remembered& m : remembered_)
        if (m.x_version == x.version() && same_tensor(w, m.w, m.w_version) && same_tensor(b, m.b, m.b_version))
            return m.z;
    return Tensor();
}

void LinearLikeNode::remember_forward(const Tensor& w, const Tensor& b, const Tensor& z) const {
    const Tensor& x = saved_input();
    if (!x.defined()) return;
    std::lock_guard<std::mutex> lock(remembered_mutex_);
    // Entries of an older input version or older parameters can never match again.
    std::erase_if(remembered_, [&](const Remembered& m) {
        return m.x_version != x.version() || (m.w.defined() && m.w.version() != m.w_version) ||
               (m.b.defined() && m.b.version() != m.b_version);
    });
    if (remembered_.size() >= kRememberedForwards) remembered_.erase(remembered_.begin());
    remembered_.push_back(Remembered{w, b, z, w.defined() ? w.version() : 0, b.defined() ? b.version() : 0,
                                     x.version()});
}

namespace {
MergedParams compute_merge(const LinearLike& f, const ChannelAffine& a);
}  // namespace

MergedParams merge_channel_affine(const LinearLike& f, const ChannelAffine& a) {
    // Without sources the map cannot be keyed by versions: computed every time, never cached.
    std::vector<Tensor> sources = a.affine_sources();
    if (sources.empty()) return compute_merge(f, a);
    sources.push_back(f.saved_weight());
    if (f.saved_bias().defined()) sources.push_back(f.saved_bias());
    const auto merged = cached(sources, "merge-channel-affine", [&] {
        const MergedParams m = compute_merge(f, a);
        return std::vector<Tensor>{m.weight, m.bias};
    });
    MergedParams out;
    out.weight = merged[0];
    out.bias = merged[1];
    return out;
}

namespace {

MergedParams compute_merge(const LinearLike& f, const ChannelAffine& a) {
    const Tensor w = f.saved_weight(), b = f.saved_bias();
    GB_CHECK(w.defined() && w.rank() >= 2, "merging a per-channel affine map: the layer before it has no weight");
    const auto [scale, shift] = a.channel_affine();
    const int64_t K = w.dim(0), per = w.numel() / K;
    GB_CHECK(scale.numel() == K && shift.numel() == K, "merging a per-channel affine map of ", scale.numel(),
             " channels into a layer with ", K, " outputs");
    const auto sv = scale.to_vector<float>(), tv = shift.to_vector<float>();
    const auto bv = b.defined() ? b.to_vector<float>() : std::vector<float>(static_cast<size_t>(K), 0.f);
    auto wv = w.to_vector<float>();
    std::vector<float> nb(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) {
        const double s = sv[static_cast<size_t>(k)];
        float* row = wv.data() + k * per;
        for (int64_t j = 0; j < per; ++j) row[j] = static_cast<float>(row[j] * s);
        nb[static_cast<size_t>(k)] = static_cast<float>(bv[static_cast<size_t>(k)] * s + tv[static_cast<size_t>(k)]);
    }
    MergedParams out;
    out.weight = from_vector(wv, w.shape(), w.device());
    out.bias = from_vector(nb, Shape{K}, w.device());
    return out;
}

}  // namespace

namespace {

// f(saved input; w, b): remembered from an earlier pass of this node, else computed and remembered.
// Never to be written by the caller.
Tensor rule_forward(const LinearLike& f, const Tensor& w, const Tensor& b) {
    if (Tensor z = f.remembered_forward(w, b); z.defined()) return z;
    Tensor z = counted_forward(f, f.saved_input(), w, b);
    f.remember_forward(w, b, z);
    return z;
}

// Gamma on an input without negative elements (after a ReLU), with the recorded
// output z = W x + b at hand. By linearity, with p = W+ x + b+ and b = b+ + b-:
//   z+ = (W + gW+) x + (b + gb+) = z + g p,   z- = (W + gW-) x + (b + gb-) = z + g (z - p),
// so one forward (p) gives both denominators, where the term form runs two
// (and a third for z without a recorded output). The rest is the term form's:
// R_in = x ((W + gW+)^T (mask+(R) / stab(z+)) + (W + gW-)^T (mask-(R) / stab(z-))),
// except that a group whose masked relevance is all zero adds exactly nothing and
// is skipped: in a ReLU network the relevance reaching a layer's output is zero
// wherever z <= 0 (the next rule multiplies by the ReLU's output), so the z < 0
// group's transposed pass never runs there.
Tensor gamma_nonnegative(const LinearLike& f, const Tensor& r, const CustomRule& form, const Tensor& z, float g) {
    const Tensor& x = f.saved_input();
    const Tensor w = f.saved_weight(), b = f.saved_bias();
    auto& be = kernels::backend_for(x.device());
    const RuleTerm pos = Rule::zplus().expand().groups[0].terms[0];  // W+, b+
    const Tensor p = rule_forward(f, modified_param(pos, w, false), modified_param(pos, b, true));
    const int64_t n = z.numel();
    check_shape(r, z.shape(), "relevance at a layer output");
    Tensor total;
    for (int sign : {+1, -1}) {
        Tensor s = same_shape(r);
        be.lrp_mask_sign(n, sign, z.data<float>(), r.data<float>(), s.data<float>());
        if (all_zero(s)) continue;
        Tensor zs = same_shape(z);  // z+ = z + g p ; z- = (1 + g) z - g p
        be.scale(n, sign > 0 ? 1.f : 1.f + g, z.data<float>(), zs.data<float>());
        be.axpy(n, sign > 0 ? g : -g, p.data<float>(), zs.data<float>());
        be.lrp_divide(n, form.stabilizer, s.data<float>(), zs.data<float>(), s.data<float>());
        // The group's x+ term carries W + gW+ (z > 0) or W + gW- (z < 0), cached by its tag.
        const RuleTerm& t = form.groups[sign > 0 ? 0 : 1].terms[0];
        Tensor c = f.input_grad_with(s, modified_param(t, w, false));
        if (total.defined())
            be.add(c.numel(), total.data<float>(), c.data<float>(), total.data<float>());
        else
            total = std::move(c);
    }
    if (!total.defined()) return zeros(x.shape(), DType::Float32, x.device());
    be.mul(total.numel(), x.data<float>(), total.data<float>(), total.data<float>());
    return total;
}

}  // namespace

// The pieces of linear_like_relevance, one per step of its formula.
namespace {

// Whether x has no negative element, tested once and only when first asked.
struct InputSign {
    const Tensor& x;
    int sign = 0;  // 1: x has no negative element, -1: it has, 0: not checked yet
    bool nonnegative() {
        if (sign == 0) sign = no_negative(x) ? 1 : -1;
        return sign == 1;
    }
};

// A term of a rule group that contributes: input, parameters and weight.
struct ActiveTerm {
    Tensor x, w, b;
    float weight;
    bool x_is_input;  // x is the saved input itself
    bool plain;       // the saved input and parameters themselves: f(x; w, b) is the recorded output
    // x is the saved input and w, b are the saved parameters or modified ones cached per version (a later
    // pass gets the same tensors): its forward is worth remembering.
    bool rememberable;
};

// The group's terms that contribute (the others are skipped as the header says).
std::vector<ActiveTerm> active_terms(const RuleGroup& g, const CustomRule& form, InputSign& x_sign, const Tensor& w,
                                     const Tensor& b) {
    const Tensor& x = x_sign.x;
    std::vector<ActiveTerm> active;
    for (const RuleTerm& t : g.terms) {
        const Tensor bk = modified_param(t, b, true);
        // A term whose input is all zero and that carries no bias adds nothing to z, nor to a
        // relevance that is multiplied by the input (x- after a ReLU): skip its two convolutions.
        const bool skippable = form.multiply_by_input && !bk.defined();
        if (skippable && t.part == RuleTerm::Part::Negative && x_sign.nonnegative()) continue;
        const bool x_itself = !t.input || (t.part == RuleTerm::Part::Positive && x_sign.nonnegative());
        const Tensor xk = x_itself ? x : t.input(x);
        if (skippable && t.part == RuleTerm::Part::Custom && all_zero(xk)) continue;
        active.push_back(ActiveTerm{xk, modified_param(t, w, false), bk, t.weight, x_itself, x_itself && !t.param,
                                    x_itself && (!t.param || !t.cache_tag.empty())});
    }
    return active;
}

// The forward of a group's single term on the saved input, computed before: the recorded output (a plain
// term) or one remembered by the node (modified parameters); else undefined. Never written to.
Tensor known_forward(const LinearLike& f, const std::vector<ActiveTerm>& active) {
    if (active.size() != 1 || !active[0].x_is_input) return Tensor();
    const Tensor z = active[0].plain ? f.saved_output() : Tensor();
    return z.defined() ? z : f.remembered_forward(active[0].w, active[0].b);
}

// Z_g = sum_k c_k f(x_k; W_k, b_k). A single term on the saved input divides by the recorded output (a plain
// term) or a remembered forward, and remembers the forward it computes (never written to: a single term is not
// summed into).
Tensor group_denominator(const LinearLike& f, const std::vector<ActiveTerm>& active, kernels::Backend& be) {
    Tensor Z;
    const bool single = active.size() == 1 && active[0].rememberable;
    const Tensor known = known_forward(f, active);
    for (const ActiveTerm& a : active) {
        Tensor zk = known.defined() ? known : single ? rule_forward(f, a.w, a.b) : counted_forward(f, a.x, a.w, a.b);
        if (!Z.defined() && a.weight == 1.f) {
            Z = std::move(zk);  // a fresh tensor: no copy
        } else if (!Z.defined()) {
            Z = same_shape(zk);
            be.scale(zk.numel(), a.weight, zk.data<float>(), Z.data<float>());
        } else {
            be.axpy(zk.numel(), a.weight, zk.data<float>(), Z.data<float>());
        }
    }
    return Z;
}

// total (+)= coef_g sum_k c_k [x_k *] f^T_{W_k}(s_g). total is not filled: the first contribution writes it (mul
// or scale), later ones add; `have_total` says whether it holds one.
void add_group_share(const LinearLike& f, const CustomRule& form, const RuleGroup& g,
                     const std::vector<ActiveTerm>& active, const Tensor& s, Tensor& total, bool& have_total,
                     kernels::Backend& be) {
    for (const ActiveTerm& a : active) {
        Tensor c = f.input_grad_with(s, a.w);
        const float factor = g.coef * a.weight;
        const int64_t n = c.numel();
        if (!have_total && form.multiply_by_input && factor == 1.f) {
            be.mul(n, a.x.data<float>(), c.data<float>(), total.data<float>());
        } else {
            if (form.multiply_by_input) be.mul(n, a.x.data<float>(), c.data<float>(), c.data<float>());
            if (have_total)
                be.axpy(n, factor, c.data<float>(), total.data<float>());
            else
                be.scale(n, factor, c.data<float>(), total.data<float>());
        }
        have_total = true;
    }
}

}  // namespace

int64_t rule_forwards_run() { return g_rule_forwards.load(std::memory_order_relaxed); }

Tensor linear_like_relevance(const LinearLike& f, const Tensor& relevance_out, const Rule& rule) {
    const CustomRule form = rule.expand();
    const Tensor& x = f.saved_input();
    const Tensor w = f.saved_weight(), b = f.saved_bias();
    auto& be = kernels::backend_for(x.device());
    Tensor z_plain;  // f(x; W, b), needed only for groups split by the sign of z
    // total is not filled: the first contribution writes it (mul or scale), later ones add, and a fill is needed
    // only when nothing contributes.
    Tensor total(x.shape(), DType::Float32, x.device());
    bool have_total = false;  // total holds a contribution (else it is uninitialised)
    InputSign x_sign{x};
    if (rule.kind == Rule::Kind::Gamma && x_sign.nonnegative())
        if (const Tensor z = f.saved_output(); z.defined()) return gamma_nonnegative(f, relevance_out, form, z, rule.gamma);
    for (const RuleGroup& g : form.groups) {
        const std::vector<ActiveTerm> active = active_terms(g, form, x_sign, w, b);
        if (active.empty()) continue;  // every term vanished: this group passes no relevance
        // Outputs of one sign of z only (Gamma): a group left without relevance adds exactly nothing.
        Tensor r = relevance_out;
        if (g.output_sign != 0) {
            if (!z_plain.defined()) z_plain = f.saved_output();
            if (!z_plain.defined()) z_plain = counted_forward(f, x, w, b);
            check_shape(relevance_out, z_plain.shape(), "relevance at a layer output");
            Tensor masked = same_shape(r);
            be.lrp_mask_sign(r.numel(), g.output_sign, z_plain.data<float>(), r.data<float>(), masked.data<float>());
            if (all_zero(masked)) continue;
            r = masked;
        }
        // One plain term (z+ on an input without negative elements, epsilon): the
        // layer's single pass, when it has one. Only as the first contribution: its
        // result is a fresh tensor that becomes total.
        if (active.size() == 1 && active[0].weight == 1.f && g.coef == 1.f && g.output_sign == 0 &&
            form.multiply_by_input && !have_total) {
            const Tensor z_known = known_forward(f, active);
            const Tensor z_keep = !z_known.defined() && active[0].rememberable
                                      ? Tensor(relevance_out.shape(), DType::Float32, relevance_out.device())
                                      : Tensor();
            Tensor fused = f.relevance_term(active[0].x, active[0].w, active[0].b, relevance_out, form.stabilizer,
                                            z_known, z_keep);
            if (fused.defined()) {
                if (!z_known.defined()) g_rule_forwards.fetch_add(1, std::memory_order_relaxed);
                if (z_keep.defined()) f.remember_forward(active[0].w, active[0].b, z_keep);
                total = fused;
                have_total = true;
                continue;
            }
        }
        const Tensor Z = group_denominator(f, active, be);
        check_shape(relevance_out, Z.shape(), "relevance at a layer output");
        Tensor s = same_shape(r);
        be.lrp_divide(r.numel(), form.stabilizer, r.data<float>(), Z.data<float>(), s.data<float>());
        add_group_share(f, form, g, active, s, total, have_total, be);
    }
    if (!have_total) be.fill(total.numel(), 0.f, total.data<float>());
    return total;
}

}  // namespace gb::layers
