#include "layers/activation.h"

#include "autograd/functions.h"

namespace gb::layers {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }

}  // namespace gb::layers
