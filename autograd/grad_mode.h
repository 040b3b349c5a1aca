// Grad mode: whether operations record graph nodes. Thread-local, on by default.
// NoGradGuard turns recording off for a scope (inference, optimizer steps);
// GradModeGuard(true) turns it on (explanations recording a forward pass).
#pragma once

namespace gb::autograd {

bool grad_enabled();
void set_grad_enabled(bool on);

// Sets grad mode for a scope and restores the previous one.
class GradModeGuard {
public:
    explicit GradModeGuard(bool on) : prev_(grad_enabled()) { set_grad_enabled(on); }
    ~GradModeGuard() { set_grad_enabled(prev_); }
    GradModeGuard(const GradModeGuard&) = delete;
    GradModeGuard& operator=(const GradModeGuard&) = delete;

private:
    bool prev_;
};

class NoGradGuard : public GradModeGuard {
public:
    NoGradGuard() : GradModeGuard(false) {}
};

}  // namespace gb::autograd
