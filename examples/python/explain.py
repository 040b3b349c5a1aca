"""Explain Fashion-MNIST-shaped images with LRP and Grad-CAM from ONE recorded forward pass.

Usage: python explain.py CHECKPOINT [IMAGES.npy] OUT_DIR
IMAGES.npy: float32 [N, 1, 28, 28] pixels in [0, 1] (default: 4 random images).
"""
import os
import sys

import numpy as np

import glassbox as gb


def main(checkpoint, images, out):
    model = gb.load(checkpoint)  # the architecture comes from the checkpoint's metadata
    x = np.load(images) if images else np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    # The checkpoint records the normalisation it was trained with; the model takes normalised input.
    if model.normalization:
        mean, std = (np.asarray(v, np.float32).reshape(1, -1, 1, 1) for v in model.normalization)
        x = (x - mean) / std
    trace = gb.Trace(model, x)  # one forward pass; the bounds of EpsilonGammaBox follow the normalisation
    lrp = trace.relevance("epsilon-gamma-box")
    cam = trace.cam("gradcam")  # same trace: no new forward pass
    print("classes:", trace.logits.argmax(axis=1), "forward passes:", gb.Trace.forward_passes())
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "lrp.npy"), lrp)
    np.save(os.path.join(out, "gradcam.npy"), cam)
    rgb = np.concatenate([gb.heatmap(lrp), gb.heatmap(cam, cmap="jet", signed=False)], axis=2)  # [N, 28, 56, 3]
    np.save(os.path.join(out, "heatmaps_rgb.npy"), rgb)


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) not in (2, 3):
        sys.exit(__doc__)
    main(args[0], args[1] if len(args) == 3 else None, args[-1])
