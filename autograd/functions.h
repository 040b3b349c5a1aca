// Differentiable functions that are not layers. Each call is one graph node
// when grad mode is on and an input requires a gradient. Shapes must match
// exactly (no broadcasting); a mismatch is a gb::Error naming both shapes.
#pragma once

#include <cstdint>

#include "../core/tensor.h"

namespace gb {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& x, float alpha);
Tensor relu(const Tensor& x);

// Sum or mean of every element -> shape [] (one element).
Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);
// Sum or mean over one axis (removed from the shape; keepdim keeps it as size 1).
Tensor sum(const Tensor& x, int64_t axis, bool keepdim = false);
Tensor mean(const Tensor& x, int64_t axis, bool keepdim = false);

// Same data, new shape (a view: no copy).
Tensor reshape(const Tensor& x, const Shape& shape);
// Keeps dims before `start_axis`, merges the rest: [N, C, H, W] -> [N, C*H*W].
Tensor flatten(const Tensor& x, int64_t start_axis = 1);
// Rows [start, start + length) along the first axis (a view).
Tensor narrow(const Tensor& x, int64_t start, int64_t length);

// [M, K] x [K, N] -> [M, N].
Tensor matmul(const Tensor& a, const Tensor& b);
// op(a) x op(b), op(t) = t^T where trans_* is set, else t: [M, K] x [K, N] -> [M, N] after the transposes,
// which are gemm's flags (no copy is made), e.g. a [N, K] times b [L, K] transposed -> [N, L].
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b);

// Over the last axis of a [rows, cols] tensor.
Tensor softmax(const Tensor& x);
Tensor log_softmax(const Tensor& x);
// Mean over the batch of -log softmax(logits)[label]; logits [N, classes], labels int32 [N].
Tensor cross_entropy(const Tensor& logits, const Tensor& labels);

}  // namespace gb
