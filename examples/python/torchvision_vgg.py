"""Explain a torchvision VGG: export its state dict from PyTorch (safetensors), load it in
glassbox (architecture inferred from names and shapes) and take LRP and Grad-CAM from one trace.
The C++ example `torchvision` reads the same file.

Usage: python torchvision_vgg.py OUT_DIR [ARCH]   (ARCH: vgg11 by default; random weights,
since the machines that run the examples cannot download pretrained ones)
"""
import os
import sys

import numpy as np
import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file

import glassbox as gb


def main(out, arch="vgg11"):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    net = getattr(torchvision.models, arch)().eval()  # pretrained weights would be weights="DEFAULT"
    path = os.path.join(out, f"{arch}.safetensors")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, path)

    # A test picture (a bright disc on a gradient), also for the C++ example.
    yy, xx = np.mgrid[0:256, 0:320]
    rgb = np.stack([xx / 320, yy / 256, ((xx - 160) ** 2 + (yy - 128) ** 2 < 60 ** 2) * 1.0], axis=-1)
    Image.fromarray((rgb * 255).astype(np.uint8)).save(os.path.join(out, "picture.png"))

    model = gb.load(path)
    print("glassbox reads", model.name, "with", model.num_classes, "classes")
    # torchvision's evaluation transform by hand: resize 256 (already), centre crop 224, ImageNet normalisation.
    crop = rgb[16:240, 48:272].transpose(2, 0, 1)[None].astype(np.float32)
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
    x = (crop - mean) / std
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    trace = gb.Trace(model, x)
    err = np.abs(trace.logits - ref).max() / np.abs(ref).max()
    print(f"logits vs PyTorch: max difference {err:.2e} of the largest")
    lrp = trace.relevance("epsilon-plus-flat")
    cam = trace.cam("gradcam")
    np.save(os.path.join(out, "lrp.npy"), lrp)
    np.save(os.path.join(out, "gradcam.npy"), cam)
    return err < 1e-4


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    raise SystemExit(0 if main(*sys.argv[1:]) else 1)
