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
    methods = ["lrp:epsilon-plus-flat", "gradcam", "saliency"]
    args = ["explain", "--checkpoint", ckpt, "--index", 0, 1, "--threads", 1, "--out", tmp_path]
    for m in methods:
        args += ["--method", m]
    run_cli(*args)
    r = check_report(tmp_path / "report.html")
    for m in methods:
        assert any(m in c for c in r.captions), (m, r.captions)
    assert len(r.images) >= 2 * (1 + len(methods)), "per image: the input and one map per method"


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
