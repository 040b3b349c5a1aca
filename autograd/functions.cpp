#include "autograd/functions.h"

#include <memory>

#include "autograd/node.h"
#include "core/factory.h"
#include "kernels/backend.h"

namespace gb {

namespace {

using autograd::Node;
using autograd::record;

kernels::Backend& be(const Tensor& t) { return kernels::backend_for(t.device()); }

void check_float(const Tensor& t, const char* what) {
    GB_CHECK(t.defined(), what, ": undefined tensor");
    GB_CHECK(t.dtype() == DType::Float32, what, ": expected float32, got ", dtype_name(t.dtype()), " of shape ",
             t.shape().str());
}

void check_binary(const Tensor& a, const Tensor& b, const char* what) {
    check_float(a, what);
    check_float(b, what);
    GB_CHECK(a.shape() == b.shape(), what, ": shapes ", a.shape().str(), " and ", b.shape().str(),
             " differ (no broadcasting)");
    check_same_device(a, b, what);
}

Tensor like(const Tensor& t) { return Tensor(t.shape(), DType::Float32, t.device()); }

Tensor scaled(const Tensor& g, float alpha) {
    Tensor out = like(g);
    be(g).scale(g.numel(), alpha, g.data<float>(), out.data<float>());
    return out;
}

// ---- add / sub / mul / scale -------------------------------------------------
struct AddNode : Node {
    float sign_b;
    explicit AddNode(float s) : sign_b(s) {}
    std::string name() const override { return sign_b > 0 ? "AddBackward" : "SubBackward"; }
    std::vector<Tensor> backward(const Tensor& g) override {
        return {needs_grad(0) ? g : Tensor(), needs_grad(1) ? (sign_b > 0 ? g : scaled(g, -1.f)) : Tensor()};
    }
};

struct MulNode : Node {
    Tensor a, b;
    MulNode(Tensor a_, Tensor b_) : a(std::move(a_)), b(std::move(b_)) {
        watch(a, "first operand");
        watch(b, "second operand");
    }
    std::string name() const override { return "MulBackward"; }
    std::vector<Tensor> backward(const Tensor& g) override {
        std::vector<Tensor> out(2);
        if (needs_grad(0)) {
            out[0] = like(g);
            be(g).mul(g.numel(), g.data<float>(), b.data<float>(), out[0].data<float>());
        }
        if (needs_grad(1)) {
            out[1] = like(g);
            be(g).mul(g.numel(), g.data<float>(), a.data<float>(), out[1].data<float>());
        }
        return out;
    }
    void release_saved() override { a = b = Tensor(); }
};

struct ScaleNode : Node {
    float alpha;
    explicit ScaleNode(float a) : alpha(a) {}
    std::string name() const override { return "ScaleBackward"; }
    std::vector<Tensor> backward(const Tensor& g) override { return {scaled(g, alpha)}; }
};

struct ReluNode : Node {
    Tensor y;
    explicit ReluNode(Tensor y_) : y(std::move(y_)) { watch(y, "output"); }
    std::string name() const override { return "ReluBackward"; }
    // LRP's standard treatment: relevance passes a ReLU unchanged.
    std::vector<Tensor> relevance(const Tensor& r) override { return {r}; }
    std::vector<Tensor> backward(const Tensor& g) override {
        Tensor dx = like(g);
        be(g).relu_backward(g.numel(), y.data<float>(), g.data<float>(), dx.data<float>());
        return {dx};
    }
    void release_saved() override { y = Tensor(); }
};

// ---- reductions --------------------------------------------------------------
// x viewed as [outer, reduce, inner]; backward broadcasts alpha * g back.
struct ReduceNode : Node {
    Shape in_shape;
    int64_t outer, reduce, inner;
    float alpha;
    ReduceNode(Shape s, int64_t o, int64_t r, int64_t i, float a)
        : in_shape(std::move(s)), outer(o), reduce(r), inner(i), alpha(a) {}
    std::string name() const override { return alpha == 1.f ? "SumBackward" : "MeanBackward"; }
    std::vector<Tensor> backward(const Tensor& g) override {
        Tensor dx(in_shape, DType::Float32, g.device());
        be(g).broadcast_dim(outer, reduce, inner, alpha, g.data<float>(), dx.data<float>());
        return {dx};
    }
};

Tensor reduce(const Tensor& x, int64_t outer, int64_t r, int64_t inner, const Shape& out_shape, bool mean_of) {
    Tensor y(out_shape, DType::Float32, x.device());
    be(x).sum_dim(outer, r, inner, x.data<float>(), y.data<float>());
    const float alpha = mean_of ? (r > 0 ? 1.f / static_cast<float>(r) : 0.f) : 1.f;
    if (mean_of) y = scaled(y, alpha);
    return record(std::make_shared<ReduceNode>(x.shape(), outer, r, inner, alpha), {x}, y);
}

Tensor reduce_axis(const Tensor& x, int64_t axis, bool keepdim, bool mean_of, const char* what) {
    check_float(x, what);
    const int64_t a = x.shape().norm_axis(axis);
    std::vector<int64_t> dims = x.shape().dims();
    const int64_t outer = x.shape().prod(0, a), r = dims[static_cast<size_t>(a)],
                  inner = x.shape().prod(a + 1, x.rank());
    if (keepdim)
        dims[static_cast<size_t>(a)] = 1;
    else
        dims.erase(dims.begin() + a);
    return reduce(x, outer, r, inner, Shape(dims), mean_of);
}

// ---- views ---------------------------------------------------------------------
struct ReshapeNode : Node {
    Shape in_shape;
    explicit ReshapeNode(Shape s) : in_shape(std::move(s)) {}
    std::string name() const override { return "ReshapeBackward"; }
    std::vector<Tensor> backward(const Tensor& g) override { return {g.view(in_shape)}; }
};

struct NarrowNode : Node {
    Shape in_shape;
    int64_t start;
    NarrowNode(Shape s, int64_t st) : in_shape(std::move(s)), start(st) {}
    std::string name() const override { return "NarrowBackward"; }
    std::vector<Tensor> backward(const Tensor& g) override {
        Tensor dx = zeros(in_shape, DType::Float32, g.device());
        Tensor part = dx.narrow(start, g.dim(0));
        be(g).copy(g.numel(), g.data<float>(), part.data<float>());
        return {dx};
    }
};

// ---- matmul ------------------------------------------------------------------------
// C = op(A) op(B); a and b are stored as given (op applied by gemm's flags).
struct MatmulNode : Node {
    Tensor a, b;
    bool ta, tb;
    MatmulNode(Tensor a_, Tensor b_, bool ta_, bool tb_) : a(std::move(a_)), b(std::move(b_)), ta(ta_), tb(tb_) {
        watch(a, "first operand");
        watch(b, "second operand");
    }
    std::string name() const override { return "MatmulBackward"; }
    std::vector<Tensor> backward(const Tensor& g) override {
        const int64_t M = g.dim(0), N = g.dim(1), K = ta ? a.dim(0) : a.dim(1);
        std::vector<Tensor> out(2);
        // d op(A) = g op(B)^T [M, K]; d op(B) = op(A)^T g [K, N]; a transposed operand takes the transpose.
        if (needs_grad(0)) {
            out[0] = like(a);
            if (!ta)  // dA = g op(B)^T
                be(g).gemm(false, !tb, M, K, N, 1.f, g.data<float>(), N, b.data<float>(), tb ? K : N, 0.f,
                           out[0].data<float>(), K);
            else  // dA = op(B) g^T [K, M]
                be(g).gemm(tb, true, K, M, N, 1.f, b.data<float>(), tb ? K : N, g.data<float>(), N, 0.f,
                           out[0].data<float>(), M);
        }
        if (needs_grad(1)) {
            out[1] = like(b);
            if (!tb)  // dB = op(A)^T g
                be(g).gemm(!ta, false, K, N, M, 1.f, a.data<float>(), ta ? M : K, g.data<float>(), N, 0.f,
                           out[1].data<float>(), N);
            else  // dB = g^T op(A) [N, K]
                be(g).gemm(true, ta, N, K, M, 1.f, g.data<float>(), N, a.data<float>(), ta ? M : K, 0.f,
                           out[1].data<float>(), K);
        }
        return out;
    }
    void release_saved() override { a = b = Tensor(); }
};

// ---- softmax family ------------------------------------------------------------------
void check_rows(const Tensor& x, const char* what) {
    check_float(x, what);
    GB_CHECK(x.rank() == 2, what, ": expected a [rows, cols] tensor, got shape ", x.shape().str());
}

struct SoftmaxNode : Node {
    Tensor y;
    bool log;
    SoftmaxNode(Tensor y_, bool l) : y(std::move(y_)), log(l) { watch(y, "output"); }
    std::string name() const override { return log ? "LogSoftmaxBackward" : "SoftmaxBackward"; }
    std::vector<Tensor> backward(const Tensor& g) override {
        Tensor dx = like(g);
        if (log)
            be(g).log_softmax_backward(y.dim(0), y.dim(1), y.data<float>(), g.data<float>(), dx.data<float>());
        else
            be(g).softmax_backward(y.dim(0), y.dim(1), y.data<float>(), g.data<float>(), dx.data<float>());
        return {dx};
    }
    void release_saved() override { y = Tensor(); }
};

struct CrossEntropyNode : Node {
    Tensor probs, labels;
    CrossEntropyNode(Tensor p, Tensor l) : probs(std::move(p)), labels(std::move(l)) {}
    std::string name() const override { return "CrossEntropyBackward"; }
    std::vector<Tensor> backward(const Tensor& g) override {
        const int64_t rows = probs.dim(0), cols = probs.dim(1);
        // d(mean)/d(loss_r) = g / rows for every row.
        Tensor dloss(Shape{rows}, DType::Float32, g.device());
        Tensor gs = scaled(g, 1.f / static_cast<float>(rows));
        be(g).broadcast_dim(1, rows, 1, 1.f, gs.data<float>(), dloss.data<float>());
        Tensor dx = like(probs);
        be(g).cross_entropy_backward(rows, cols, probs.data<float>(), labels.data<int32_t>(), dloss.data<float>(),
                                     dx.data<float>());
        return {dx, Tensor()};
    }
    void release_saved() override { probs = labels = Tensor(); }
};

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
    check_binary(a, b, "add");
    Tensor y = like(a);
    be(a).add(a.numel(), a.data<float>(), b.data<float>(), y.data<float>());
    return record(std::make_shared<AddNode>(1.f), {a, b}, y);
}

Tensor sub(const Tensor& a, const Tensor& b) {
    check_binary(a, b, "sub");
    Tensor y = like(a);
    be(a).sub(a.numel(), a.data<float>(), b.data<float>(), y.data<float>());
    return record(std::make_shared<AddNode>(-1.f), {a, b}, y);
}

Tensor mul(const Tensor& a, const Tensor& b) {
    check_binary(a, b, "mul");
    Tensor y = like(a);
    be(a).mul(a.numel(), a.data<float>(), b.data<float>(), y.data<float>());
    if (!autograd::should_record({a, b})) return y;
    return record(std::make_shared<MulNode>(a.detach(), b.detach()), {a, b}, y);
}

Tensor scale(const Tensor& x, float alpha) {
    check_float(x, "scale");
    return record(std::make_shared<ScaleNode>(alpha), {x}, scaled(x, alpha));
}

Tensor relu(const Tensor& x) {
    check_float(x, "relu");
    Tensor y = like(x);
    be(x).relu_forward(x.numel(), x.data<float>(), y.data<float>());
    if (!autograd::should_record({x})) return y;
    return record(std::make_shared<ReluNode>(y.detach()), {x}, y);
}

Tensor sum(const Tensor& x) {
    check_float(x, "sum");
    return reduce(x, 1, x.numel(), 1, Shape{}, false);
}

Tensor mean(const Tensor& x) {
    check_float(x, "mean");
    GB_CHECK(x.numel() > 0, "mean of an empty tensor (shape ", x.shape().str(), ")");
    return reduce(x, 1, x.numel(), 1, Shape{}, true);
}

Tensor sum(const Tensor& x, int64_t axis, bool keepdim) { return reduce_axis(x, axis, keepdim, false, "sum"); }
Tensor mean(const Tensor& x, int64_t axis, bool keepdim) { return reduce_axis(x, axis, keepdim, true, "mean"); }

Tensor reshape(const Tensor& x, const Shape& shape) {
    check_float(x, "reshape");
    return record(std::make_shared<ReshapeNode>(x.shape()), {x}, x.view(shape));
}

Tensor flatten(const Tensor& x, int64_t start_axis) {
    GB_CHECK(x.defined(), "flatten: undefined tensor");
    const int64_t a = x.shape().norm_axis(start_axis);
    std::vector<int64_t> dims(x.shape().dims().begin(), x.shape().dims().begin() + a);
    dims.push_back(x.shape().prod(a, x.rank()));
    return reshape(x, Shape(dims));
}

Tensor narrow(const Tensor& x, int64_t start, int64_t length) {
    check_float(x, "narrow");
    Tensor y = x.narrow(start, length);
    return record(std::make_shared<NarrowNode>(x.shape(), start), {x}, y);
}

Tensor matmul(const Tensor& a, const Tensor& b) { return matmul(a, b, false, false); }

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
    check_float(a, "matmul");
    check_float(b, "matmul");
    GB_CHECK(a.rank() == 2 && b.rank() == 2, "matmul: expected two matrices, got ", a.shape().str(), " and ",
             b.shape().str());
    const int64_t M = trans_a ? a.dim(1) : a.dim(0), K = trans_a ? a.dim(0) : a.dim(1);
    const int64_t Kb = trans_b ? b.dim(1) : b.dim(0), N = trans_b ? b.dim(0) : b.dim(1);
    GB_CHECK(K == Kb, "matmul: cannot multiply ", a.shape().str(), trans_a ? "^T" : "", " by ", b.shape().str(),
             trans_b ? "^T" : "", " (expected [M, K] x [K, N])");
    check_same_device(a, b, "matmul");
    Tensor y(Shape{M, N}, DType::Float32, a.device());
    be(a).gemm(trans_a, trans_b, M, N, K, 1.f, a.data<float>(), a.dim(1), b.data<float>(), b.dim(1), 0.f,
               y.data<float>(), N);
    if (!autograd::should_record({a, b})) return y;
    return record(std::make_shared<MatmulNode>(a.detach(), b.detach(), trans_a, trans_b), {a, b}, y);
}

Tensor softmax(const Tensor& x) {
    check_rows(x, "softmax");
    Tensor y = like(x);
    be(x).softmax_forward(x.dim(0), x.dim(1), x.data<float>(), y.data<float>());
    if (!autograd::should_record({x})) return y;
    return record(std::make_shared<SoftmaxNode>(y.detach(), false), {x}, y);
}

Tensor log_softmax(const Tensor& x) {
    check_rows(x, "log_softmax");
    Tensor y = like(x);
    be(x).log_softmax_forward(x.dim(0), x.dim(1), x.data<float>(), y.data<float>());
    if (!autograd::should_record({x})) return y;
    return record(std::make_shared<SoftmaxNode>(y.detach(), true), {x}, y);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels) {
    check_rows(logits, "cross_entropy");
    GB_CHECK(labels.defined() && labels.dtype() == DType::Int32, "cross_entropy: labels must be int32");
    const int64_t rows = logits.dim(0), cols = logits.dim(1);
    GB_CHECK(rows > 0, "cross_entropy: empty batch");
    check_shape(labels, Shape{rows}, "cross_entropy labels");
    check_same_device(logits, labels, "cross_entropy");
    const std::vector<int32_t> host = labels.to_vector<int32_t>();
    for (size_t i = 0; i < host.size(); ++i)
        GB_CHECK(host[i] >= 0 && host[i] < cols, "cross_entropy: label ", host[i], " of sample ", i,
                 " is outside [0, ", cols, ")");
    Tensor loss_rows(Shape{rows}, DType::Float32, logits.device());
    Tensor probs = like(logits);
    be(logits).cross_entropy_forward(rows, cols, logits.data<float>(), labels.data<int32_t>(),
                                     loss_rows.data<float>(), probs.data<float>());
    Tensor total(Shape{}, DType::Float32, logits.device());
    be(logits).sum_dim(1, rows, 1, loss_rows.data<float>(), total.data<float>());
    Tensor loss = scaled(total, 1.f / static_cast<float>(rows));
    return record(std::make_shared<CrossEntropyNode>(probs, labels), {logits, labels}, loss);
}

}  // namespace gb
