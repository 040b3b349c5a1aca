"""Every report.html the program writes, rendered on small runs and checked for structure (issue 17, item 5):
self-contained, balanced markup, embedded PNGs that decode, inline SVGs that parse, and the sections, rows and
captions each command promises. One test per command; reportcheck.py holds the structure rules."""
import os
import pathlib

import pytest

import glassbox as gb
from conftest import FASHION, run_cli
from reportcheck import check_report, check_svg_file

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
pytestmark = pytest.mark.skipif(not os.path.isdir(FASHION), reason="Debian's dataset-fashion-mnist is not installed")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """The trained vgg-mini of tests/data (Fashion-MNIST), saved as a glassbox checkpoint."""
    path = tmp_path_factory.mktemp("reports") / "model.safetensors"
    gb.load(str(DATA / "vgg_mini.model.safetensors"), arch="vgg-mini").save(str(path))
    return path


def test_explain_report(ckpt, tmp_path):
    """Per image: the input as the model saw it, then per method one row with its map and its overlay (the very
    overlay PNG written to disk), captioned with the method, the layer Grad-CAM used, the target and the
    parameters; a Grad-CAM whose ReLU removed everything is flagged in words."""
    import base64
    import re

    import numpy as np

    methods = ["lrp:epsilon-plus-flat", "gradcam", "saliency", "ig:steps=8", "smoothgrad:samples=4,noise=0.1",
               "lrp:epsilon-gamma-box"]
    indices = [0, 1, 2]
    args = ["explain", "--checkpoint", ckpt, "--index", *indices, "--threads", 1, "--upscale", 4, "--out", tmp_path]
    for m in methods:
        args += ["--method", m]
    run_cli(*args)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    r = check_report(tmp_path / "report.html")
    alts = [im.alt for im in r.images]
    n = len(indices)
    assert sum(a.startswith("input as the model saw it: 28x28 grey") for a in alts) == n, alts
    for m in methods:
        assert alts.count(f"{m} map") == n and alts.count(f"{m} overlay") == n, (m, alts)
        caps = [c for c in r.captions if c.startswith(m + " ")]
        assert len(caps) == n, (m, r.captions)
        for c in caps:
            assert re.search(r"target: \S.* \(\d\), the predicted class", c), c
            assert "NaN" not in c, c
        stem = re.sub(r"[^A-Za-z0-9.-]", "_", m)
        for i in range(n):  # at --upscale 4 the report embeds the written overlay byte for byte (28 * 4 = 112)
            png = base64.b64encode((tmp_path / f"{i}_{stem}_overlay.png").read_bytes()).decode()
            assert "data:image/png;base64," + png in html, (m, i)
    cam = [c for c in r.captions if c.startswith("gradcam ")]
    assert all("Grad-CAM" in c and "at layer features.8 (the default: the last convolution's rectified output)" in c
               for c in cam), cam
    assert all("parameters: steps=8, rule=gausslegendre (default)" in c for c in r.captions if c.startswith("ig:")), r.captions
    assert all("samples=4, noise=0.1, seed=0 (default)" in c for c in r.captions if c.startswith("smoothgrad")), r.captions
    assert all("composite epsilon-gamma-box" in c and "canonizer" in c for c in r.captions if c.startswith("lrp:epsilon-gamma")), r.captions
    assert "zero relevance shows the input unchanged" in r.text

    # All-zero maps are flagged exactly where the written map is zero. On this checkpoint the Grad-CAM of test image 0
    # (explained for its predicted class) is all zero: no position of features.8 has positive evidence, so the ReLU
    # leaves nothing; the other methods are not.
    cams = np.load(tmp_path / "gradcam.npy")
    flagged = ["all zero: the ReLU of gradcam removed every value at features.8" in c for c in cam]
    assert flagged == [not cams[i].any() for i in range(n)], (flagged, cam)
    assert flagged[0], cam[0]
    assert not any("all zero" in c for c in r.captions if not c.startswith("gradcam ")), r.captions


def test_evaluate_report(ckpt, tmp_path):
    run_cli("evaluate", "--checkpoint", ckpt, "--limit", 4, "--batch-size", 4, "--method", "saliency", "--method",
            "random", "--metric", "aopc", "--metric", "deletion", "--metric", "randomisation", "--steps", 4,
            "--aopc-steps", 4, "--threads", 1, "--out", tmp_path)
    r = check_report(tmp_path / "report.html")
    rows = [row[0] for t in r.tables for row in t[1:] if row]
    for m in ("saliency", "random"):
        assert m in rows, (m, rows)


def test_prune_report(ckpt, tmp_path):
    run_cli("prune", "--checkpoint", ckpt, "--criterion", "l1", "--rate", 0.4, "--reference-per-class", 1,
            "--curve-rates", "0.2,0.4", "--limit", 40, "--timing-batch", 2, "--out", tmp_path)
    check_report(tmp_path / "report.html")


def test_intervene_report(ckpt, tmp_path):
    run_cli("intervene", "--checkpoint", ckpt, "--layer", "features.5", "--limit", 8, "--value", "zero", "--k", 1,
            "--threads", 1, "--out", tmp_path)
    r = check_report(tmp_path / "report.html")
    assert r.svgs, "the ablation plot is inline SVG"
    check_svg_file(tmp_path / "ablation.svg")


def test_counterfactual_report(ckpt, tmp_path):
    run_cli("counterfactual", "--checkpoint", ckpt, "--index", 0, "--target", 2, "--steps", 10, "--threads", 1,
            "--out", tmp_path)
    r = check_report(tmp_path / "report.html")
    assert r.svgs, "the probability path is inline SVG"
    check_svg_file(tmp_path / "probability_path.svg")


def test_distill_report(ckpt, tmp_path):
    run_cli("distill", "--checkpoint", ckpt, "--depth", 2, "--epochs", 1, "--batch-size", 64, "--train-limit", 256,
            "--test-limit", 100, "--report-images", 1, "--out", tmp_path)
    r = check_report(tmp_path / "report.html")
    assert r.svgs, "the tree is drawn inline in SVG"
