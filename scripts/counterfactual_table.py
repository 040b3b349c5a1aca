#!/usr/bin/env python3
"""The measured table of docs/counterfactuals.md: gb.counterfactual (what `glassbox counterfactual` runs) on the
first N Fashion-MNIST test images of a checkpoint, towards the runner-up class and towards the least probable
class, without and with the prototype term (prototype: the nearest training image of the target class in pixels,
as the program picks it). Prints a markdown table. Usage:
  PYTHONPATH=build/python build/pyenv/bin/python scripts/counterfactual_table.py CHECKPOINT [N] [THETA]"""
import gzip
import sys
import time

import numpy as np

import glassbox as gb

DATA = "/usr/share/datasets/fashion-mnist"


def idx_images(name):
    with gzip.open(f"{DATA}/{name}-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return (raw.astype(np.float32) * (np.float32(1) / np.float32(255))).reshape(-1, 1, 28, 28)


def idx_labels(name):
    with gzip.open(f"{DATA}/{name}-labels-idx1-ubyte.gz") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=8).astype(np.int64)


def nearest_of_class(train, labels, pixels, cls):
    members = np.flatnonzero(labels == cls)
    flat = train[members].reshape(len(members), -1).astype(np.float64)
    d = ((flat - pixels.reshape(1, -1).astype(np.float64)) ** 2).sum(axis=1)
    return train[members[int(np.argmin(d))]]


def main():
    ckpt = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    theta = float(sys.argv[3]) if len(sys.argv) > 3 else 0.1
    model = gb.load(ckpt)
    mean, std = (float(v) for v in (model.metadata["normalize.mean"], model.metadata["normalize.std"]))
    pixels = idx_images("t10k")[:n]
    x = (pixels - np.float32(mean)) / np.float32(std)
    logits = model(x)
    order = np.argsort(-logits, axis=1)
    train, train_labels = idx_images("train"), idx_labels("train")
    print(f"| target | prototype term | reached | steps (mean) | L2 distance in pixels (mean, reached) | "
          f"changed pixels > 0.1 (mean, reached) | seconds ({n} images, one batch) |")
    print("|---|---|---|---|---|---|---|")
    for name, targets in (("runner-up class", order[:, 1]), ("least probable class", order[:, -1])):
        for th in (0.0, theta):
            protos = None
            if th > 0:
                protos = np.stack([(nearest_of_class(train, train_labels, pixels[i], int(targets[i])) - np.float32(mean))
                                   / np.float32(std) for i in range(n)]).astype(np.float32)
            start = time.perf_counter()
            rs = gb.counterfactual(model, x, [int(t) for t in targets], prototype_weight=th, prototype=protos)
            seconds = time.perf_counter() - start
            ok = [r for r in rs if r["reached"]]
            dist = np.mean([r["distance"] * std for r in ok]) if ok else float("nan")
            changed = np.mean([(np.abs(r["difference"]) * std > 0.1).sum() for r in ok]) if ok else float("nan")
            print(f"| {name} | {'theta = %g' % th if th > 0 else 'off'} | {len(ok)}/{n} | "
                  f"{np.mean([r['steps'] for r in rs]):.1f} | {dist:.3f} | {changed:.1f} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
