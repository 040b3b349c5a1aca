#!/usr/bin/env python3
"""The walkthrough of docs/explain.md ("Explain a pretrained torchvision VGG-16"),
run by tests/test_walkthrough.cpp.

  walkthrough.py export DOCS_MD OUT_DIR
      runs the walkthrough's export block, read from DOCS_MD, in OUT_DIR, with
      weights=None (random weights, seeded) in place of the download;
  walkthrough.py zennit OUT_DIR [--float64]
      the reference: torchvision's VGG-16 with OUT_DIR/vgg16.safetensors, on the
      normalised input OUT_DIR/input.npy ([1, 3, 224, 224]): writes logits.npy and
      lrp.npy, Zennit 0.5.1's EpsilonGammaBox map (ZBox bounds of [0, 1] pixels
      after ImageNet's normalisation; output relevance one-hot of the predicted
      class); with --float64 also lrp64.npy, the same in float64 (stored as float32;
      about 3 minutes on 2 cores), and prints how far float32 is from it.
Needs torch, torchvision, safetensors and zennit==0.5.1 (scripts/setup.sh's <build>/pyenv).
"""
import os
import re
import sys

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def export(docs, out):
    text = open(docs, encoding="utf-8").read()
    m = re.search(r"<!-- walkthrough:export -->\s*```python\n(.*?)```", text, re.S)
    if not m:
        sys.exit(f"{docs}: no python block after <!-- walkthrough:export -->")
    code = m.group(1)
    if code.count('weights="IMAGENET1K_V1"') != 1:
        sys.exit(f"{docs}: the export block should download weights=\"IMAGENET1K_V1\" exactly once:\n{code}")
    code = code.replace('weights="IMAGENET1K_V1"', "weights=None")
    import torch

    torch.manual_seed(0)
    os.chdir(out)
    print(f"running the walkthrough's export block in {out} (weights=None):\n{code}")
    exec(compile(code, docs + ":walkthrough:export", "exec"), {})


def zennit_reference(out, float64):
    import numpy as np
    import torch
    import torchvision
    from safetensors.torch import load_file
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonGammaBox

    torch.set_num_threads(2)
    net = torchvision.models.vgg16()
    net.load_state_dict(load_file(os.path.join(out, "vgg16.safetensors")))
    net.eval()
    x = torch.from_numpy(np.load(os.path.join(out, "input.npy")))
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    low, high = ((0 - mean) / std).expand_as(x), ((1 - mean) / std).expand_as(x)
    with torch.no_grad():
        logits = net(x)
    target = torch.zeros_like(logits).scatter_(1, logits.argmax(1, keepdim=True), 1.0)
    with Gradient(model=net, composite=EpsilonGammaBox(low=low, high=high)) as attributor:
        _, relevance = attributor(x, target)
    np.save(os.path.join(out, "logits.npy"), logits.numpy())
    np.save(os.path.join(out, "lrp.npy"), relevance.detach().numpy())
    print(f"zennit: predicted class {int(logits.argmax())}, relevance sum {float(relevance.sum()):.6g}")
    if not float64:
        return
    net.double()
    with Gradient(model=net, composite=EpsilonGammaBox(low=low.double(), high=high.double())) as attributor:
        _, relevance64 = attributor(x.double(), target.double())
    np.save(os.path.join(out, "lrp64.npy"), relevance64.detach().numpy().astype(np.float32))
    err = float((relevance - relevance64).abs().max() / relevance64.abs().max())
    print(f"zennit: float32 vs float64 {err:.3g} of the max")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "export":
        export(sys.argv[2], sys.argv[3])
    elif len(sys.argv) in (3, 4) and sys.argv[1] == "zennit" and sys.argv[3:] in ([], ["--float64"]):
        zennit_reference(sys.argv[2], sys.argv[3:] == ["--float64"])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
