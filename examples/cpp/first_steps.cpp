// The README's C++ walk-through ("Use it from C++"), as one program: a small network,
// a training step's gradients, then LRP, Grad-CAM and a gradient from one recorded pass.
// tests/pytest/test_readme.py checks that the README's C++ blocks are lines of this file, in order.
#include <glassbox/autograd/engine.h>
#include <glassbox/autograd/functions.h>
#include <glassbox/core/factory.h>
#include <glassbox/layers/layers.h>

#include <glassbox/explain/cam.h>
#include <glassbox/explain/trace.h>

#include <iostream>

int main() {
using namespace gb;
layers::Sequential net;
net.add(std::make_shared<layers::Conv2d>(1, 8, 3, layers::Conv2dOptions{.padding = 1}));
net.add(std::make_shared<layers::ReLU>());
net.add(std::make_shared<layers::MaxPool2d>(2));
net.add(std::make_shared<layers::Flatten>());
net.add(std::make_shared<layers::Linear>(8 * 14 * 14, 10));

Tensor x = uniform(Shape{4, 1, 28, 28});
Tensor labels = from_vector(std::vector<int32_t>{0, 1, 2, 3}, Shape{4});
Tensor loss = cross_entropy(net(x), labels);
autograd::backward(loss);            // parameters' .grad() are filled

explain::Trace trace(net, x);                                  // one forward, graph kept
Tensor seed = trace.seed({explain::Target::predicted()});
Tensor lrp  = trace.relevance(explain::Composite::preset("epsilon-plus-flat"), seed)[0];
Tensor cam  = explain::cam(trace, explain::CamMethod::GradCam, "0", seed).map;
Tensor grad = trace.gradient(trace.seed({explain::Target::of(3)}))[0];   // no new forward
// ZBox needs the input's range (never assumed): with_range(0, 1) for raw pixels,
// PresetOptions::for_normalization(mean, std) for normalised ones.
Tensor box  = trace.relevance(explain::Composite::preset("epsilon-gamma-box",
                                  explain::PresetOptions::with_range(0.f, 1.f)), seed)[0];

std::cout << "loss " << loss.item() << ", relevance " << lrp.shape().str() << ", Grad-CAM " << cam.shape().str()
          << ", gradient " << grad.shape().str() << ", ZBox relevance " << box.shape().str() << "\n";
}
