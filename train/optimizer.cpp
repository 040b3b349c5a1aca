#include "train/optimizer.h"

#include "core/factory.h"
#include "core/parse.h"
#include "core/profile.h"

namespace gb::train {

Optimizer::Optimizer(NamedTensors params) : params_(std::move(params)), state_(params_.size()) {
    GB_CHECK(!params_.empty(), "optimizer: no parameters to optimise");
    for (const auto& [n, t] : params_)
        GB_CHECK(t.dtype() == DType::Float32 && t.requires_grad(), "optimizer: parameter '", n,
                 "' is not a float32 tensor that requires a gradient");
}

void Optimizer::step() {
    const profile::Scope scope(this, "step");
    ++steps_;
    for (size_t i = 0; i < params_.size(); ++i) {
        Tensor& p = params_[i].second;
        const Tensor g = p.grad();
        if (!g.defined()) continue;
        check_shape(g, p.shape(), ("gradient of " + params_[i].first).c_str());
        update(i, p, g);
        p.bump_version();
    }
}

void Optimizer::zero_grad() {
    for (auto& [n, p] : params_) p.set_grad(Tensor());
}

Tensor& Optimizer::slot(size_t index, size_t which) {
    auto& s = state_[index];
    if (s.size() < slots().size()) s.resize(slots().size());
    if (!s[which].defined()) s[which] = zeros(params_[index].second.shape(), DType::Float32, params_[index].second.device());
    return s[which];
}

bool Optimizer::has_slot(size_t index, size_t which) const {
    return which < state_[index].size() && state_[index][which].defined();
}

NamedTensors Optimizer::state() const {
    NamedTensors out;
    const auto names = slots();
    for (size_t i = 0; i < params_.size(); ++i)
        for (size_t k = 0; k < names.size(); ++k)
            if (has_slot(i, k)) out.emplace_back(params_[i].first + "." + names[k], state_[i][k]);
    return out;
}

std::map<std::string, std::string> Optimizer::state_metadata() const {
    return {{"optimizer", name()}, {"optimizer.steps", std::to_string(steps_)}};
}

void Optimizer::load_state(const NamedTensors& tensors, const std::map<std::string, std::string>& meta) {
    auto it = meta.find("optimizer");
    GB_CHECK(it != meta.end() && it->second == name(), "resume: the checkpoint's optimizer is '",
             it == meta.end() ? std::string("(none)") : it->second, "', this run uses '", name(), "'");
    auto st = meta.find("optimizer.steps");
    GB_CHECK(st != meta.end(), "resume: optimizer.steps missing from the checkpoint");
    steps_ = parse_int(st->second, 0, INT64_MAX, "resume: metadata 'optimizer.steps'");
    const auto names = slots();
    for (auto& s : state_) s.clear();
    for (const auto& [key, t] : tensors) {
        bool placed = false;
        for (size_t i = 0; i < params_.size() && !placed; ++i)
            for (size_t k = 0; k < names.size() && !placed; ++k)
                if (key == params_[i].first + "." + names[k]) {
                    check_shape(t, params_[i].second.shape(), ("optimizer state " + key).c_str());
                    slot(i, k).copy_from(t);
                    placed = true;
                }
        GB_CHECK(placed, "resume: optimizer state '", key, "' matches no parameter of this model");
    }
}

Sgd::Sgd(NamedTensors params, const kernels::SgdParams& p) : Optimizer(std::move(params)), p_(p) {
    GB_CHECK(p_.lr > 0.f, "sgd: learning rate must be positive, got ", p_.lr);
    GB_CHECK(p_.momentum >= 0.f && p_.weight_decay >= 0.f, "sgd: momentum and weight decay must be >= 0");
    GB_CHECK(!p_.nesterov || (p_.momentum > 0.f && p_.dampening == 0.f),
             "sgd: nesterov needs momentum > 0 and no dampening (as in PyTorch)");
}

void Sgd::update(size_t index, Tensor& param, const Tensor& grad) {
    const bool first = !has_slot(index, 0);
    float* buf = p_.momentum != 0.f ? slot(index, 0).data<float>() : nullptr;
    kernels::backend_for(param.device())
        .sgd_step(param.numel(), p_, first, param.data<float>(), grad.data<float>(), buf);
}

Adam::Adam(NamedTensors params, const kernels::AdamParams& p) : Optimizer(std::move(params)), p_(p) {
    GB_CHECK(p_.lr > 0.f, name(), ": learning rate must be positive, got ", p_.lr);
    GB_CHECK(p_.beta1 >= 0.f && p_.beta1 < 1.f && p_.beta2 >= 0.f && p_.beta2 < 1.f, name(),
             ": betas must be in [0, 1)");
    GB_CHECK(p_.eps > 0.f && p_.weight_decay >= 0.f, name(), ": eps must be > 0 and weight decay >= 0");
}

void Adam::update(size_t index, Tensor& param, const Tensor& grad) {
    float* m = slot(index, 0).data<float>();
    float* v = slot(index, 1).data<float>();
    kernels::backend_for(param.device())
        .adam_step(param.numel(), p_, steps(), param.data<float>(), grad.data<float>(), m, v);
}

}  // namespace gb::train
