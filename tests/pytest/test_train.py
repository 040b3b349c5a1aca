"""glassbox.train: a train::Trainer run with a progress callback (called with the GIL held,
after every batch, with the running loss and accuracy), its history and files, the same
numbers as `glassbox train` with the same options (metrics.csv equal: one library behind
both, same thread count), and a callback's exception stopping training with the files left
as the last good ones."""
import json
import os

import numpy as np
import pytest

import glassbox as gb
from conftest import run_cli

FASHION = "/usr/share/datasets/fashion-mnist"
pytestmark = pytest.mark.skipif(not os.path.isdir(FASHION), reason="Debian's dataset-fashion-mnist is not installed")

SMALL = dict(model="vgg-mini", epochs=2, batch_size=64, train_limit=256, test_limit=128, lr=0.05, seed=1)


def test_progress_history_and_files(tmp_path):
    calls = []

    def progress(info):
        # Python objects can be made here: the GIL is held.
        calls.append(dict(info))

    r = gb.train(out_dir=str(tmp_path), progress=progress, **SMALL)
    assert [(c["epoch"], c["batch"]) for c in calls] == [(e, b) for e in (1, 2) for b in (1, 2, 3, 4)]
    assert all(c["epochs"] == 2 and c["batches"] == 4 for c in calls)
    assert [c["seen"] for c in calls[:4]] == [64, 128, 192, 256]
    assert len(r["history"]) == 2
    # The last call of an epoch carries the epoch's training loss and accuracy.
    for epoch in (1, 2):
        last = calls[4 * epoch - 1]
        h = r["history"][epoch - 1]
        assert last["loss"] == pytest.approx(h["train_loss"], rel=1e-12)
        assert last["accuracy"] == pytest.approx(h["train_acc"], rel=1e-12)
        assert 0 <= h["test_acc"] <= 1 and np.isfinite(h["test_loss"])
    for key in ("model", "resume", "metrics_csv", "metrics_json"):
        assert os.path.isfile(r[key]), key
    with open(r["metrics_json"]) as f:
        assert len(json.load(f)) == 2
    model = gb.load(r["model"])
    assert model.name == "vgg-mini" and model.normalization is not None


def test_same_as_the_program(tmp_path):
    gb.train(out_dir=str(tmp_path / "py"), **SMALL)
    run_cli("train", "--model", "vgg-mini", "--epochs", 2, "--batch-size", 64, "--train-limit", 256, "--test-limit",
            128, "--lr", 0.05, "--seed", 1, "--out", tmp_path / "cli")

    def columns(path):  # metrics.csv without the timing columns
        with open(path) as f:
            rows = [line.strip().split(",") for line in f]
        keep = [i for i, h in enumerate(rows[0]) if h not in ("seconds", "images_per_second")]
        return [[row[i] for i in keep] for row in rows]

    assert columns(tmp_path / "py" / "metrics.csv") == columns(tmp_path / "cli" / "metrics.csv")


def test_callback_exception_stops_training(tmp_path):
    def progress(info):
        if info["epoch"] == 2 and info["batch"] == 2:
            raise ValueError("enough")

    with pytest.raises(ValueError, match="enough"):
        gb.train(out_dir=str(tmp_path), progress=progress, **SMALL)
    # The files are epoch 1's: the last good moment. Resuming from it finishes the run.
    with open(tmp_path / "metrics.json") as f:
        assert len(json.load(f)) == 1
    r = gb.train(out_dir=str(tmp_path), resume=str(tmp_path / "resume.safetensors"), **SMALL)
    assert [h["epoch"] for h in r["history"]] == [1, 2]


def test_errors(tmp_path):
    with pytest.raises(gb.Error, match="option 'epochs' does not take a str"):
        gb.train(epochs="two", out_dir=str(tmp_path))
    # Not converted: a numeric text or a bool is not an integer option (nanobind's casts would take both).
    with pytest.raises(gb.Error, match="option 'epochs' does not take a str"):
        gb.train(epochs="3", out_dir=str(tmp_path))
    with pytest.raises(gb.Error, match="option 'batch_size' does not take a bool"):
        gb.train(batch_size=True, out_dir=str(tmp_path))
    with pytest.raises(gb.Error, match="seed must be >= 0"):
        gb.train(seed=-1, out_dir=str(tmp_path))
    with pytest.raises(gb.Error, match="unknown option 'epoch'"):
        gb.train(epoch=1, out_dir=str(tmp_path))
    with pytest.raises(gb.Error):
        gb.train(model="vgg-nothing", out_dir=str(tmp_path), **{k: v for k, v in SMALL.items() if k != "model"})
