"""Filter pruning from Python: gb.prune and gb.filter_scores make what `glassbox prune` makes (its
model.safetensors for the same checkpoint, criterion, rate and reference set), the pruned model is genuinely
smaller and computes PyTorch's original model with the removed filters' activations zeroed by forward hooks,
the global ranking is the documented one (reproduced in numpy), and bad requests fail clearly."""
import gzip
import os
import subprocess

import numpy as np
import pytest
import torch

import glassbox as gb
from conftest import FASHION, max_rel_error, run_cli, same_build, torch_model


def fashion_reference(per_class):
    """The first `per_class` training images of each class (dataset order), as `glassbox prune` picks them."""
    with gzip.open(os.path.join(FASHION, "train-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int32)
    idx = sorted(i for c in range(10) for i in np.flatnonzero(labels == c)[:per_class])
    with gzip.open(os.path.join(FASHION, "train-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16)[: (idx[-1] + 1) * 784].reshape(-1, 1, 28, 28)
    return images[idx].astype(np.float32) * np.float32(1 / 255), labels[idx]


def some_filters(widths):
    return [[f for f in range(w) if f % 2 == 1 or f % 5 == 0] for w in widths]


@pytest.mark.parametrize("bn", [False, True])
def test_pruned_logits_are_the_masked_original(bn):
    tm = torch_model(bn)
    gm = gb.from_state_dict(tm.state_dict())
    keep = some_filters([32, 32, 64, 64])
    pruned = gb.prune_filters(gm, keep)
    sd = pruned.state_dict()
    assert [sd[f"features.{i}.weight"].shape[0] for i in ((0, 3, 7, 10) if bn else (0, 2, 5, 7))] == [len(k) for k in keep]
    assert sd["classifier.0.weight"].shape == (256, len(keep[3]) * 49)
    # Reference: PyTorch's unpruned model, each block's output (after its ReLU) zeroed outside `keep` by a hook.
    relus = [m for m in tm.features if isinstance(m, torch.nn.ReLU)]
    handles = []
    for relu, k in zip(relus, keep):
        mask = torch.zeros(1, relu_width(tm, relu), 1, 1)
        mask[0, k] = 1
        handles.append(relu.register_forward_hook(lambda _m, _i, out, mask=mask: out * mask))
    x = np.random.default_rng(3).random((4, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        ref = tm(torch.from_numpy(x)).numpy()
    for h in handles:
        h.remove()
    # PyTorch and glassbox agree to ~1e-6 of the largest logit on these models (test_api.py); the pruned model's
    # shorter sums move it by ~5e-7 more (tests/test_pruning.cpp).
    assert max_rel_error(pruned(x), ref) < 1e-5
    assert max_rel_error(gm(x), ref) > 1e-3  # the masks matter


def relu_width(tm, relu):
    mods = list(tm.features)
    for m in reversed(mods[: mods.index(relu)]):
        if isinstance(m, torch.nn.Conv2d):
            return m.out_channels
    raise AssertionError("no convolution before the ReLU")


def test_l1_ranking_is_the_documented_one():
    model = gb.create("vgg-mini", seed=4)
    raw = gb.filter_scores(model, "l1")
    norm = gb.filter_scores(model, "l1", normalized=True)
    sd = model.state_dict()
    for layer, v in raw.items():  # sum |w| per filter, normalised by the layer's sum
        np.testing.assert_allclose(v, np.abs(sd[layer + ".weight"].astype(np.float64)).sum(axis=(1, 2, 3)), rtol=1e-12)
        np.testing.assert_allclose(norm[layer], v / v.sum(), rtol=1e-12)
    # Global ranking of the normalised scores, lowest first (stable), each layer keeping its last filter.
    rate = 0.7
    entries = sorted(((s, li, f) for li, (_, v) in enumerate(norm.items()) for f, s in enumerate(v)),
                     key=lambda e: e[0])
    left = [len(v) for v in norm.values()]
    remove = int(np.floor(rate * sum(left) + 0.5))  # llround
    gone = set()
    for s, li, f in entries:
        if len(gone) == remove:
            break
        if left[li] == 1:
            continue
        gone.add((li, f))
        left[li] -= 1
    pruned = gb.prune(model, "l1", rate).state_dict()
    kept0 = [f for f in range(32) if (0, f) not in gone]
    np.testing.assert_array_equal(pruned["features.0.weight"], sd["features.0.weight"][kept0])
    for li, layer in enumerate(norm):
        kept = [f for f in range(len(norm[layer])) if (li, f) not in gone]
        assert pruned[layer + ".weight"].shape[0] == len(kept)
        np.testing.assert_array_equal(pruned[layer + ".bias"], sd[layer + ".bias"][kept])


@pytest.mark.skipif(not os.path.isdir(FASHION), reason="Debian's dataset-fashion-mnist is not installed")
@pytest.mark.parametrize("criterion", ["lrp", "l1", "taylor"])
def test_python_prune_is_the_programs(criterion, tmp_path):
    ckpt = tmp_path / "model.safetensors"
    gb.create("vgg-mini", seed=6).save(str(ckpt))
    run_cli("prune", "--checkpoint", ckpt, "--criterion", criterion, "--rate", 0.4, "--reference-per-class", 2,
            "--curve-rates", "none", "--limit", 50, "--timing-batch", 2, "--out", tmp_path / "out")
    for name in ("model.safetensors", "report.html", "scores.csv", "curves.csv"):
        assert (tmp_path / "out" / name).is_file(), name
    cli = gb.load(str(tmp_path / "out" / "model.safetensors"))
    x, y = fashion_reference(2)  # the checkpoint records no normalisation: the pixels as they are
    py = gb.prune(gb.load(str(ckpt)), criterion, 0.4, reference=x, labels=y)
    assert cli.metadata["prune.criterion"] == criterion and cli.metadata["vgg.features"] == py.metadata["vgg.features"]
    a, b = cli.state_dict(), py.state_dict()
    assert a.keys() == b.keys()
    # The same filters are kept and copied: the tensors are equal. (Another build could rank a near tie of lrp or
    # taylor scores the other way, so there only l1, whose scores do not depend on the build's sums, must agree.)
    if same_build() or criterion == "l1":
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        np.testing.assert_array_equal(cli(x), py(x))


def test_errors(tmp_path):
    model = gb.create("vgg-mini", seed=1)
    with pytest.raises(gb.Error, match=r"unknown criterion 'random' \(known: lrp, l1, taylor\)"):
        gb.prune(model, "random", 0.5)
    for rate in (0.0, 1.0, 1.5):
        with pytest.raises(gb.Error, match=r"rate must be inside \(0, 1\)"):
            gb.prune(model, "l1", rate)
    with pytest.raises(gb.Error, match="needs reference samples"):
        gb.prune(model, "lrp", 0.5)
    with pytest.raises(gb.Error, match="convolution 1 would keep no filter"):
        gb.prune_filters(model, [[0], [], [0], [0]])
    ckpt = tmp_path / "m.safetensors"
    model.save(str(ckpt))
    cli = os.environ["GB_CLI"]
    for args, message in (
        (["--checkpoint", ckpt, "--criterion", "random"], "unknown criterion 'random'"),
        (["--checkpoint", ckpt, "--rate", "1.5"], "--rate must be inside (0, 1), got 1.5"),
        (["--checkpoint", tmp_path / "missing.safetensors"], "missing.safetensors"),
    ):
        done = subprocess.run([cli, "prune", *map(str, args), "--out", str(tmp_path / "bad")], capture_output=True,
                              text=True)
        assert done.returncode != 0 and message in done.stderr, done.stderr
        assert not (tmp_path / "bad").exists()
