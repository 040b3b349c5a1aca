#include "layers/flatten.h"

#include "autograd/functions.h"

namespace gb::layers {

Tensor Flatten::forward(const Tensor& x) { return flatten(x, start_); }

}  // namespace gb::layers
