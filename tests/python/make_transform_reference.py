#!/usr/bin/env python3
"""Reference values for glassbox's image transforms (tests/test_transforms.cpp).

Writes tests/data/transforms/*.npy from Debian 12's python3-torch 1.13 and
python3-torchvision 0.14 (PIL 9.4). Run once from the repository root:

    /usr/bin/python3 tests/python/make_transform_reference.py

Files:
  input_37x53.npy        float32 [3, 37, 53], uniform [0, 1) (seed 0)
  resize_HxW.npy         torchvision.transforms.functional.resize(input, [H, W],
                         antialias=True) on the float tensor (torch's
                         _upsample_bilinear2d_aa, PIL's ImagingResample in float)
  photo_61x83.npy        int32 [61, 83, 3], 8-bit RGB pixels (seed 1), smooth plus noise
  eval_tensor.npy        ToTensor -> Resize(32, antialias=True) -> CenterCrop(24) -> ImageNet
                         Normalize, on the float tensor: [3, 24, 24]
  eval_pil.npy           Resize(32) -> CenterCrop(24) -> ToTensor -> Normalize on the PIL image
                         (PIL's 8-bit path: rounds to 8 bits after each pass): [3, 24, 24]
  eval_pil_grey.npy      convert("L") -> Resize(28) -> CenterCrop(28) -> ToTensor on the PIL
                         image (the 1-channel, 28x28 model's path): [1, 28, 28]
"""
import os

import numpy as np
import PIL
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "transforms")
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def save(name, array):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(array))


def main():
    os.makedirs(OUT, exist_ok=True)
    print("torch", torch.__version__, "torchvision", torchvision.__version__, "PIL", PIL.__version__)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 37, 53, generator=g)
    save("input_37x53.npy", x.numpy().astype(np.float32))
    for h, w in [(16, 20), (50, 70), (20, 90), (37, 20), (5, 53)]:
        y = F.resize(x, [h, w], interpolation=T.InterpolationMode.BILINEAR, antialias=True)
        save(f"resize_{h}x{w}.npy", y.numpy().astype(np.float32))

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:61, 0:83]
    smooth = np.stack([128 + 100 * np.sin(xx / 7.0), 128 + 100 * np.cos(yy / 5.0), (xx + 2 * yy) % 256], axis=-1)
    photo = np.clip(smooth + rng.integers(-30, 31, size=smooth.shape), 0, 255).astype(np.uint8)
    save("photo_61x83.npy", photo.astype(np.int32))

    t = F.to_tensor(photo)
    t = F.resize(t, 32, interpolation=T.InterpolationMode.BILINEAR, antialias=True)
    t = F.normalize(F.center_crop(t, 24), MEAN, STD)
    save("eval_tensor.npy", t.numpy().astype(np.float32))

    pil = T.Compose([T.Resize(32), T.CenterCrop(24), T.ToTensor(), T.Normalize(MEAN, STD)])
    save("eval_pil.npy", pil(Image.fromarray(photo, "RGB")).numpy().astype(np.float32))

    grey = T.Compose([T.Resize(28), T.CenterCrop(28), T.ToTensor()])
    save("eval_pil_grey.npy", grey(Image.fromarray(photo, "RGB").convert("L")).numpy().astype(np.float32))


if __name__ == "__main__":
    main()
