#include "layers/dropout.h"

#include <sstream>

#include "layers/layer_node.h"
#include "kernels/backend.h"

namespace gb::layers {

namespace {

struct DropoutNode : LayerNode {
    Tensor mask;
    explicit DropoutNode(Tensor m) : mask(std::move(m)) {}
    std::string name() const override { return "DropoutBackward"; }
    std::vector<Tensor> backward(const Tensor& dy) override {
        Tensor dx(dy.shape(), DType::Float32, dy.device());
        kernels::backend_for(dy.device()).mul(dy.numel(), dy.data<float>(), mask.data<float>(), dx.data<float>());
        return {dx};
    }
    std::vector<Tensor> relevance(const Tensor& r) override { return {r}; }  // relevance passes dropout unchanged
    void release_saved() override { mask = Tensor(); }
};

// Eval-mode dropout is still one node, so hooks and relevance see the layer.
struct IdentityNode : LayerNode {
    std::string name() const override { return "IdentityBackward"; }
    std::vector<Tensor> backward(const Tensor& dy) override { return {dy}; }
};

}  // namespace

Dropout::Dropout(float p, Generator* gen) : p_(p), gen_(gen) {
    GB_CHECK(p_ >= 0.f && p_ < 1.f, "Dropout: p must be in [0, 1), got ", p_);
}

std::string Dropout::describe() const {
    std::ostringstream s;
    s << "Dropout(p=" << p_ << ")";
    return s.str();
}

Tensor Dropout::forward(const Tensor& x) {
    GB_CHECK(x.dtype() == DType::Float32, describe(), ": expected float32, got ", dtype_name(x.dtype()));
    if (!is_training() || p_ == 0.f) return autograd::record(std::make_shared<IdentityNode>(), {x}, x.detach());
    Tensor y(x.shape(), DType::Float32, x.device()), mask(x.shape(), DType::Float32, x.device());
    Generator& gen = gen_ ? *gen_ : default_generator();
    // Per row of the batch: under data-parallel training (BatchRows) a row gets the draws it gets in one process.
    const uint64_t offset = gen.reserve_rows(static_cast<uint64_t>(x.numel()), x.rank() > 0 ? x.dim(0) : 1);
    kernels::backend_for(x.device())
        .dropout_forward(x.numel(), p_, gen.seed(), offset, x.data<float>(), y.data<float>(), mask.data<float>());
    return autograd::record(std::make_shared<DropoutNode>(mask), {x}, y);
}

}  // namespace gb::layers
