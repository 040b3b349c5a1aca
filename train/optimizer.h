// Optimizers over a model's named parameters, with PyTorch's semantics:
// SGD (momentum, dampening, nesterov, L2 weight decay), Adam (L2 decay in the
// gradient) and AdamW (decoupled decay). Per-parameter state is exposed as
// named tensors so checkpoints can save and restore it exactly.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../core/tensor.h"
#include "../kernels/backend.h"

namespace gb::train {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Optimizer {
public:
    explicit Optimizer(NamedTensors params);
    virtual ~Optimizer() = default;
    virtual std::string name() const = 0;

    // One update of every parameter that has a gradient.
    void step();
    void zero_grad();
    virtual float lr() const = 0;
    virtual void set_lr(float lr) = 0;
    int64_t steps() const { return steps_; }

    // State as named tensors ("<param>.<slot>") and scalars, for checkpoints.
    NamedTensors state() const;
    std::map<std::string, std::string> state_metadata() const;
    // Restores what state() / state_metadata() produced; gb::Error on any mismatch.
    void load_state(const NamedTensors& tensors, const std::map<std::string, std::string>& meta);

protected:
    virtual std::vector<std::string> slots() const = 0;  // per-parameter state names
    virtual void update(size_t index, Tensor& param, const Tensor& grad) = 0;
    Tensor& slot(size_t index, size_t which);  // created (zeros) on first use
    bool has_slot(size_t index, size_t which) const;
    const NamedTensors& params() const { return params_; }

private:
    NamedTensors params_;
    std::vector<std::vector<Tensor>> state_;
    int64_t steps_ = 0;
};

class Sgd : public Optimizer {
public:
    Sgd(NamedTensors params, const kernels::SgdParams& p);
    std::string name() const override { return "sgd"; }
    float lr() const override { return p_.lr; }
    void set_lr(float lr) override { p_.lr = lr; }

protected:
    std::vector<std::string> slots() const override { return {"momentum_buffer"}; }
    void update(size_t index, Tensor& param, const Tensor& grad) override;

private:
    kernels::SgdParams p_;
};

class Adam : public Optimizer {
public:
    Adam(NamedTensors params, const kernels::AdamParams& p);
    std::string name() const override { return p_.decoupled ? "adamw" : "adam"; }
    float lr() const override { return p_.lr; }
    void set_lr(float lr) override { p_.lr = lr; }

protected:
    std::vector<std::string> slots() const override { return {"exp_avg", "exp_avg_sq"}; }
    void update(size_t index, Tensor& param, const Tensor& grad) override;

private:
    kernels::AdamParams p_;
};

}  // namespace gb::train
