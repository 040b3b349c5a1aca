"""Measure explanation methods on a checkpoint: per-image metrics from gb.metrics, and the
whole evaluation of `glassbox evaluate` from gb.evaluate (the same numbers, the same files).

Usage: python evaluate.py CHECKPOINT OUT_DIR [IMAGES]
(the first IMAGES Fashion-MNIST test images, default 50; Debian's dataset-fashion-mnist.)
"""
import gzip
import sys

import numpy as np

import glassbox as gb

FASHION = "/usr/share/datasets/fashion-mnist"


def fashion_test(n):
    with gzip.open(f"{FASHION}/t10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16)[: n * 784].reshape(n, 1, 28, 28)
    with gzip.open(f"{FASHION}/t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return x.astype(np.float32) * np.float32(1 / 255), labels


def main(checkpoint, out, n=50):
    model = gb.load(checkpoint)
    x, labels = fashion_test(n)
    mean, std = (np.asarray(v, np.float32).reshape(1, -1, 1, 1) for v in model.normalization)
    x = (x - mean) / std  # the model takes normalised input; black and the noise range follow from it

    # One method, per image: the map, then metrics that score it (arrays [N]).
    lrp = gb.attribute(model, x, "lrp:epsilon-plus-flat")
    aopc = gb.metrics.aopc(model, x, lrp, patch=4, steps=16, replacement="noise")  # higher is better
    deletion = gb.metrics.deletion(model, x, lrp)  # lower is better
    curves = gb.metrics.curves(model, x, lrp, steps=16, replacement="black", probability=True)  # [N, 17]
    print(f"LRP: AOPC {aopc.mean():.3f}, deletion AUC {deletion.mean():.3f}, "
          f"probability after all pixels went black {curves[:, -1].mean():.3f}")
    sens = gb.metrics.max_sensitivity(model, x[:10], "saliency", samples=5, radius=0.02)
    print(f"saliency: max-sensitivity {sens.mean():.3f} (first 10 images)")

    # Several methods at once, as `glassbox evaluate`: per-image values for every column, and the
    # program's files (results.csv, per_image.csv, results.md, curves.csv, plots, report.html) in OUT_DIR.
    r = gb.evaluate(model, x, labels, ["lrp:epsilon-plus-flat", "gradcam", "saliency", "random"],
                    ["aopc", "deletion"], batch=25, out_dir=out)
    print(f"accuracy {r['correct']}/{r['samples']}")
    for method, m in r["methods"].items():
        print(f"{method:>24}: " + ", ".join(f"{k} {v.mean():.3f}" for k, v in m["values"].items()))


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) not in (2, 3):
        sys.exit(__doc__)
    main(args[0], args[1], *(int(a) for a in args[2:]))
