"""A custom LRP composite, Zennit-style: rules by layer type and by layer name.

The composite spelt out here is EpsilonPlusFlat (ZPlus on convolutions, Epsilon on dense
layers, Flat on the first layer), so the script checks it against the preset of that name.
"""
import numpy as np

import glassbox as gb

model = gb.create("vgg-mini", seed=0)
x = np.random.default_rng(1).random((2, 1, 28, 28), dtype=np.float32)
trace = gb.Trace(model, x)

mine = (gb.Composite("my-epsilon-plus-flat")
        .by_type("conv", gb.Rule.zplus())
        .by_type("linear", gb.Rule.epsilon(1e-6))
        .by_name("features.0", gb.Rule.flat()))
r = trace.relevance(mine, target=3)
same = np.array_equal(r, trace.relevance("epsilon-plus-flat", target=3))
print(f"{mine.name}: relevance sums {r.sum(axis=(1, 2, 3))}, equal to the preset: {same}")

# A variant: Gamma on the convolutions, AlphaBeta(2, 1) on the last one.
variant = (gb.Composite("gamma-then-alphabeta")
           .by_type("conv", gb.Rule.gamma(0.25))
           .by_name("features.7", gb.Rule.alpha_beta(2.0, 1.0))
           .by_type("linear", gb.Rule.epsilon(0.25)))
print("variant:", trace.relevance(variant, target=3).sum(axis=(1, 2, 3)))
raise SystemExit(0 if same else 1)
