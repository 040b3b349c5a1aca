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
    # Every plot is an SVG file inlined in the report (no PNG plots), a curve per method, each named in the legend.
    plots = _plots_inlined(tmp_path, r, ["aopc-noise_curves.svg", "deletion_curves.svg", "randomisation.svg"], 2)
    assert not list(tmp_path.glob("*.png"))
    for texts in plots.values():
        assert "saliency" in texts and "random" in texts, texts
    # The randomisation section: a table row per method; the plot's x axis names the layers of results.csv's
    # cascade (from the output down), in that order.
    rand = next(t for t in r.tables if t[0][1].startswith("up to "))
    assert [row[0] for row in rand[1:]] == ["saliency", "random"]
    with open(tmp_path / "results.csv") as f:
        layers = [l.split(",")[1][len("randomisation.spearman_abs."):] for l in f
                  if l.startswith("saliency,randomisation.spearman_abs.")]
    assert len(layers) >= 4 and layers[-1] == "features.0", layers
    assert [t[len("up to "):] for t in rand[0][1:]] == layers
    texts = plots["randomisation.svg"]
    assert [t for t in texts if t in layers] == layers, texts


def test_prune_report(ckpt, tmp_path):
    run_cli("prune", "--checkpoint", ckpt, "--criterion", "l1", "--rate", 0.4, "--reference-per-class", 1,
            "--curve-rates", "0.2,0.4", "--limit", 40, "--timing-batch", 2, "--out", tmp_path)
    r = check_report(tmp_path / "report.html")
    # The curves of every criterion (without and with fine-tuning: six series), as a table and an inlined SVG.
    criteria = ("lrp", "l1", "taylor")
    curves = next(t for t in r.tables if t[0][0] == "criterion")
    assert sorted({row[0] for row in curves[1:]}) == sorted(criteria)
    texts = _plots_inlined(tmp_path, r, ["accuracy_vs_rate.svg"], 6)["accuracy_vs_rate.svg"]
    assert all(c in texts and c + ", fine-tuned" in texts for c in criteria), texts
    assert not list(tmp_path.glob("*.png"))


def test_intervene_report(ckpt, tmp_path):
    run_cli("intervene", "--checkpoint", ckpt, "--layer", "features.5", "--limit", 8, "--value", "zero", "--k", 1,
            "--threads", 1, "--out", tmp_path)
    r = check_report(tmp_path / "report.html")
    assert r.svgs, "the ablation plot is inline SVG"
    check_svg_file(tmp_path / "ablation.svg")
    # One curve per ranking (the ablation table's columns after k); each criterion's ranking is a row of the
    # agreement table (not the causal one, the reference, nor the random baseline).
    ablation = next(t for t in r.tables if t[0][0] == "k")
    rankings = ablation[0][1:]
    texts = _plots_inlined(tmp_path, r, ["ablation.svg"], len(rankings))["ablation.svg"]
    assert all(k in texts for k in rankings), texts
    agreement = next(t for t in r.tables if t[0][0] == "criterion")
    assert [row[0] for row in agreement[1:]] == [k for k in rankings if k not in ("causal", "random")]


def test_counterfactual_report(ckpt, tmp_path):
    run_cli("counterfactual", "--checkpoint", ckpt, "--index", 0, "--target", 2, "--steps", 10, "--threads", 1,
            "--out", tmp_path)
    r = check_report(tmp_path / "report.html")
    assert r.svgs, "the probability path is inline SVG"
    check_svg_file(tmp_path / "probability_path.svg")
    # A curve per class of Fashion-MNIST, each named in the legend; the pictures stay PNG (rasters by nature).
    texts = _plots_inlined(tmp_path, r, ["probability_path.svg"], 10)["probability_path.svg"]
    assert "0 (T-shirt/top)" in texts and "9 (Ankle boot)" in texts, texts
    assert len(r.images) >= 3, "original, counterfactual and difference as PNG"


def test_distill_report(ckpt, tmp_path):
    run_cli("distill", "--checkpoint", ckpt, "--depth", 2, "--epochs", 1, "--batch-size", 64, "--train-limit", 256,
            "--test-limit", 100, "--report-images", 1, "--out", tmp_path)
    r = check_report(tmp_path / "report.html")
    assert r.svgs, "the tree is drawn inline in SVG"
    # The history plot (accuracy and fidelity: two curves) is written and inlined; the tree and its grids are
    # the two other SVGs; every model is a row of the scores table.
    _plots_inlined(tmp_path, r, ["history.svg"], 2, inline_count=3)
    scores = next(t for t in r.tables if t[0][0] == "model")
    names = [row[0] for row in scores[1:]]
    assert len(names) == 4 and names[1:3] == ["soft tree, most probable leaf", "soft tree, mixture of leaves"], names
    assert names[3].startswith("CART"), names


def _plots_inlined(out_dir, report, files, series, inline_count=None):
    """The line plots of a run: `files` are all the .svg files in `out_dir`, each a standalone SVG (xmlns, viewBox,
    width and height, so it scales in the page) with `series` polylines, and each inlined in `report` (an inline
    SVG with the same texts); there are `inline_count` inline SVGs (default: one per file). Returns each file's
    texts."""
    ns = "{http://www.w3.org/2000/svg}"
    assert sorted(p.name for p in out_dir.glob("*.svg")) == sorted(files)
    assert len(report.svgs) == (len(files) if inline_count is None else inline_count)
    inline = [report.svg_texts(i) for i in range(len(report.svgs))]
    out = {}
    for name in files:
        root = check_svg_file(out_dir / name)
        assert root.tag == ns + "svg", f"{name}: no SVG namespace"
        assert root.get("viewBox") and root.get("width") and root.get("height"), name
        assert len(list(root.iter(ns + "polyline"))) == series, name
        texts = ["".join(t.itertext()) for t in root.iter(ns + "text")]
        assert texts in inline, f"{name} is not inlined in report.html"
        out[name] = texts
    return out




def test_visualize_report(ckpt, tmp_path):
    import numpy as np

    channels = [5, 41, 0]
    args = ["visualize", "--checkpoint", ckpt, "--layer", "features.7", "--steps", 10, "--threads", 1, "--out", tmp_path]
    for c in channels:
        args += ["--channel", c]
    out = run_cli(*args)
    r = check_report(tmp_path / "report.html")
    # One figure per channel, captioned with its name and the objective before -> after (the program's printed values).
    printed = {line.split()[1]: line.split() for line in out.splitlines() if line.startswith("features.7 #")}
    for c in channels:
        caps = [cap for cap in r.captions if cap.startswith(f"features.7 #{c}:")]
        assert len(caps) == 1, (c, r.captions)
        _, _, start, _, end = printed[f"#{c}"]
        assert f"{start} -> {end}" in caps[0], (caps[0], start, end)
    assert len(r.images) == len(channels)
    # The objectives' table: before, after, rise per picture; the settings table names every regulariser.
    table = next(t for t in r.tables if t[0][:4] == ["picture", "objective", "before", "after"])
    assert [row[0] for row in table[1:]] == [f"features.7 #{c}" for c in channels]
    settings = [row[0] for t in r.tables for row in t[1:] if row]
    for s in ("L2 decay l2", "jitter (pixels)", "blur every (steps)", "total variation tv"):
        assert s in settings, (s, settings)
    assert np.load(tmp_path / "activation_maximisation.npy").shape == (len(channels), 1, 28, 28)
    assert (tmp_path / "activation_maximisation.png").stat().st_size > 0
