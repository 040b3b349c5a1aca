#!/usr/bin/env python3
"""Reference data for tests/test_torchvision.cpp: torchvision-layout VGGs with
seeded random weights and randomly perturbed BatchNorm statistics, their logits
and Zennit 0.5.1 LRP maps.

Usage: torchvision_vgg.py OUT_DIR [--full]   (--full: only the full-size case)

For every case NAME it writes, into OUT_DIR:
  NAME.model.safetensors  the plain state dict (torchvision's names, including the
                          int64 num_batches_tracked; no metadata at all)
  NAME.ref.safetensors    input [N,3,H,W], target [N] (I64), logits,
                          lrp.epsilon_plus_flat, lrp.epsilon_gamma_box (relevance at the
                          input; output relevance one-hot(target), Zennit's attr_output),
                          and (64x64 cases) the same from a float64 copy of the model
                          (*.f64), the float32 noise floor the test reports.
Zennit composites: EpsilonPlusFlat() and EpsilonGammaBox(low=LOW, high=HIGH), both
with canonizers=[SequentialMergeBatchNorm()] (defaults epsilon 1e-6, gamma 0.25).
--full writes torchvision.models.vgg11_bn() itself instead (4096-wide classifier, 1000
classes, 1x3x224x224; logits only): a 532 MB state dict.
Needs Debian's python3-torch / python3-torchvision and zennit==0.5.1. Dependency-free
safetensors writer (8-byte little-endian header length, JSON header, raw data).
"""
import copy
import json
import os
import struct
import sys
import time

try:
    import numpy as np
    import torch
    import torchvision
    from torchvision.models.vgg import VGG, make_layers
    import zennit
    from zennit.attribution import Gradient
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import EpsilonGammaBox, EpsilonPlusFlat
except ImportError as e:  # the C++ test reports this output
    sys.exit(f"torchvision_vgg.py: {e}: needs torch, torchvision (Debian python3-torch, python3-torchvision) "
             f"and zennit 0.5.1 (pip install --no-deps zennit==0.5.1); scripts/setup.sh makes such a venv")

LOW, HIGH = -2.2, 2.6  # ZBox bounds of the first layer; inputs are U(-2, 2)


def save_safetensors(path, tensors, metadata=None):
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        a = t.detach().cpu().contiguous().numpy()
        dtype = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}[a.dtype]
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


def perturb(model, gen):
    """Random biases everywhere and BatchNorm statistics far from the identity."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.bias.uniform_(-0.1, 0.1, generator=gen)
            elif isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
                m.running_mean.copy_(torch.rand(n, generator=gen) * 0.6 - 0.3)
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.25)
                m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=gen)))


def lrp(model, x, onehot, composite):
    with Gradient(model=model, composite=composite) as attributor:
        _, rel = attributor(x, onehot)
    return rel


def make_case(out_dir, name, model, shape, methods, seed, f64=True):
    t0 = time.time()
    gen = torch.Generator().manual_seed(seed)
    perturb(model, gen)
    model.eval()
    save_safetensors(os.path.join(out_dir, name + ".model.safetensors"), model.state_dict())
    x = torch.rand(shape, generator=gen) * 4 - 2
    with torch.no_grad():
        logits = model(x)
    # sample 0: the predicted class; the others: the lowest logit, then arbitrary ones
    target = logits.argmax(1)
    if len(target) > 1:
        target[1] = logits[1].argmin()
    onehot = torch.nn.functional.one_hot(target, logits.shape[1]).to(x.dtype)
    out = {"input": x, "target": target, "logits": logits}
    model64 = copy.deepcopy(model).double() if f64 else None
    for key in methods:
        for suffix, m, xx in (("", model, x), (".f64", model64, x.double()))[:2 if f64 else 1]:
            comp = (EpsilonPlusFlat(canonizers=[SequentialMergeBatchNorm()]) if key == "epsilon_plus_flat" else
                    EpsilonGammaBox(low=LOW, high=HIGH, canonizers=[SequentialMergeBatchNorm()]))
            out["lrp." + key + suffix] = lrp(m, xx.clone().requires_grad_(True), onehot.to(xx.dtype), comp).float()
    if f64:
        with torch.no_grad():
            out["logits.f64"] = model64(x.double()).float()
    save_safetensors(os.path.join(out_dir, name + ".ref.safetensors"), out,
                     {"torch": torch.__version__, "torchvision": torchvision.__version__,
                      "zennit": zennit.__version__ if hasattr(zennit, "__version__") else "0.5.1",
                      "low": LOW, "high": HIGH, "seed": seed})
    print(f"{name}: {tuple(shape)} -> {tuple(logits.shape)}, {time.time() - t0:.1f} s", flush=True)


def narrow(cfg, batch_norm, hidden, classes):
    """torchvision's VGG on make_layers(cfg), classifier Linear layers narrowed in place."""
    model = VGG(make_layers(cfg, batch_norm=batch_norm), num_classes=classes)
    c = model.classifier
    c[0] = torch.nn.Linear(cfg[-2] * 7 * 7, hidden[0])
    c[3] = torch.nn.Linear(hidden[0], hidden[1])
    c[6] = torch.nn.Linear(hidden[1], classes)
    return model


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if "--full" in sys.argv[2:]:
        torch.manual_seed(4)
        make_case(out_dir, "vgg11_bn_full", torchvision.models.vgg11_bn(), (1, 3, 224, 224), (), 19, f64=False)
        return
    both = ("epsilon_plus_flat", "epsilon_gamma_box")
    # vgg11_bn's pattern, narrow: 5 pools, 64 -> 2x2, AdaptiveAvgPool2d up to 7x7
    torch.manual_seed(1)
    make_case(out_dir, "vgg11_bn_narrow",
              narrow([8, "M", 16, "M", 24, 24, "M", 32, 32, "M", 32, 32, "M"], True, (40, 24), 10),
              (2, 3, 64, 64), both, 11)
    # vgg13's pattern without BatchNorm, non-square 48x40 input
    torch.manual_seed(2)
    make_case(out_dir, "vgg13_narrow",
              narrow([8, 8, "M", 16, 16, "M", 16, 16, "M", 24, 24, "M", 24, 24, "M"], False, (32, 32), 7),
              (2, 3, 48, 40), both, 13)
    # vgg16_bn's pattern at 224: AdaptiveAvgPool2d((7, 7)) is the identity there
    torch.manual_seed(3)
    make_case(out_dir, "vgg16_bn_narrow_224",
              narrow([4, 4, "M", 8, 8, "M", 8, 8, 8, "M", 16, 16, 16, "M", 16, 16, 16, "M"], True, (24, 16), 5),
              (1, 3, 224, 224), both, 16, f64=False)


if __name__ == "__main__":
    main()
