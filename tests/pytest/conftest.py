"""Shared pieces of the Python module's tests: vgg-mini in PyTorch (tests/python/vgg_mini.py,
the layout glassbox's vgg-mini and vgg-mini-bn load by name), seeded random weights and inputs,
and the glassbox program for the C++ side of the comparisons."""
import gzip
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import glassbox as gb

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
from vgg_mini import VGGMini  # noqa: E402

FASHION = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist


def torch_model(bn, seed=7):
    """Default PyTorch init after manual_seed(seed); BatchNorm with random statistics (else it is the identity)."""
    torch.manual_seed(seed)
    model = VGGMini(bn)
    if bn:
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def pair(request):
    """(torch model, glassbox model from its state dict, input batch [4, 1, 28, 28] in [0, 1])."""
    bn = getattr(request, "param", False)
    tm = torch_model(bn)
    gm = gb.from_state_dict(tm.state_dict())
    x = np.random.default_rng(11).random((4, 1, 28, 28), dtype=np.float32)
    return tm, gm, x


def max_rel_error(got, ref):
    """max |got - ref| / max |ref| per sample (the rule of tests/data/README.md), the worst sample."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    n = ref.shape[0]
    diff = np.abs(got - ref).reshape(n, -1).max(axis=1)
    scale = np.abs(ref).reshape(n, -1).max(axis=1)
    scale[scale == 0] = np.abs(ref).max() or 1.0
    return float((diff / scale).max())


def run_cli(*args):
    """Runs the glassbox program (GB_CLI, set by ctest) and returns its output; fails with it on an error."""
    cli = os.environ.get("GB_CLI")
    assert cli, "GB_CLI (the glassbox program) is not set: run the suite through ctest"
    done = subprocess.run([cli, *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def same_build():
    """Whether the glassbox program and this module were built with the same options (then they compute the
    same floats in the same order; `pip install .` is portable, the set-up script's build uses -march=native)."""
    return f"build: {gb.build_options}\n" in run_cli("info")


def fashion_test_images(n):
    """The first n images [n, 1, 28, 28] and labels of Debian's Fashion-MNIST test split."""
    with gzip.open(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16)[: n * 784]
    with gzip.open(os.path.join(FASHION, "t10k-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    # As the library reads them (io/dataset.cpp): byte * (1/255) in float32.
    return images.reshape(n, 1, 28, 28).astype(np.float32) * np.float32(1 / 255), labels.astype(np.int32)
