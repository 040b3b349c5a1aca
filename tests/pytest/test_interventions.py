"""gb.Intervention and gb.intervention_study (explain/interventions.h) against `glassbox intervene` and against
their definitions, on the trained vgg-mini of tests/data (no normalisation recorded: the program's pixels are the
model's input). The program and the module run the same library on the same checkpoint and Fashion-MNIST test
images (read here as io/dataset.cpp reads them): the effect matrices must be bit for bit equal in one build (1e-5
of the largest value for a module built with other options) and the rankings the same."""
import csv
import gzip
import json
import pathlib

import numpy as np
import pytest

import glassbox as gb
from conftest import max_rel_error, run_cli

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist")


def fashion(split, n):
    """The first n images [n, 1, 28, 28] in [0, 1] and labels of Fashion-MNIST's split (bytes times the float 1/255)."""
    stem = "train" if split == "train" else "t10k"
    images, labels = FASHION / f"{stem}-images-idx3-ubyte.gz", FASHION / f"{stem}-labels-idx1-ubyte.gz"
    if not images.exists():
        pytest.skip(f"{images} is missing (Debian package dataset-fashion-mnist)")
    with gzip.open(images) as f:
        f.seek(16)
        x = np.frombuffer(f.read(784 * n), dtype=np.uint8).astype(np.float32) * (np.float32(1) / np.float32(255))
    with gzip.open(labels) as f:
        f.seek(8)
        y = np.frombuffer(f.read(n), dtype=np.uint8).astype(np.int64)
    return x.reshape(n, 1, 28, 28), y


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model = gb.load(str(DATA / "vgg_mini.model.safetensors"), arch="vgg-mini")
    path = tmp_path_factory.mktemp("iv") / "model.safetensors"
    model.save(str(path))
    return model, path


@pytest.mark.parametrize("value", ["zero", "resample"])
def test_study_matches_the_program(trained, tmp_path, value):
    model, ckpt = trained
    x, y = fashion("test", 16)
    ref, _ = fashion("train", 12)
    run_cli("intervene", "--checkpoint", ckpt, "--layer", "features.7", "--channels", 0, 3, 5, 9, 12, 17, "--value", value,
            "--limit", 16, "--reference", 12, "--seed", 4, "--out", tmp_path / "out")
    s = gb.intervention_study(model, x, "features.7", y, channels=[0, 3, 5, 9, 12, 17], value=value, reference=ref, seed=4)
    same_build = f"build: {gb.build_options}\n" in run_cli("info")
    for name in ("effect_logits", "effect_probabilities"):
        cli = np.load(tmp_path / "out" / f"{name}.npy")
        if same_build:
            np.testing.assert_array_equal(s[name], cli, err_msg=name)
        else:
            assert max_rel_error(s[name][None], cli[None]) <= 1e-5, name
    rows = list(csv.DictReader(open(tmp_path / "out" / "channels.csv")))
    assert [int(r["channel"]) for r in rows] == s["channels"]
    for r, causal, lrp in zip(rows, s["causal"], s["lrp"]):
        assert float(r["causal_logit"]) == pytest.approx(causal, rel=1e-7, abs=1e-12)
        assert float(r["lrp"]) == pytest.approx(lrp, rel=1e-7, abs=1e-12)
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["ablation_accuracy"] == s["ablation_accuracy"]
    assert run["accuracy"] == s["accuracy"]


def test_intervention_definitions(trained):
    model, _ = trained
    x, _ = fashion("test", 8)
    clean = model(x)
    own = gb.Trace(model, x).layer_output("features.2")
    # The identity: every unit set to its own value.
    with gb.Intervention(model, "features.2", value=own) as iv:
        np.testing.assert_array_equal(model(x), clean)
        assert "features.2 every unit := given" in iv.describe()
    # do(zero) on channel 3: its activations are 0 in the traced pass; the effect averaged by the study matches.
    with gb.Intervention(model, "features.2", channels=[3]):
        t = gb.Trace(model, x)
        assert not t.layer_output("features.2")[:, 3].any()
        intervened = model(x)
        grad = t.gradient(target=1)
    np.testing.assert_array_equal(model(x), clean)  # removed on leaving the block
    assert not np.array_equal(intervened, clean)
    assert np.abs(grad).max() > 0
    s = gb.intervention_study(model, x, "features.2", channels=[3], ks=[1])
    np.testing.assert_allclose(s["effect_logits"][0], (clean.astype(np.float64) - intervened).mean(axis=0), rtol=1e-5,
                               atol=1e-6)
    assert s["accuracy"] == 1.0  # without labels: agreement with the model's own predictions


def test_intervention_errors(trained):
    model, _ = trained
    with pytest.raises(gb.Error, match="no layer 'features.99'"):
        gb.Intervention(model, "features.99", channels=[0])
    with pytest.raises(gb.Error, match="channel 64 is outside the 64 channels of features.7"):
        gb.Intervention(model, "features.7", channels=[64])
    with pytest.raises(gb.Error, match="needs reference outputs"):
        gb.Intervention(model, "features.7", channels=[0], value="mean")
    with pytest.raises(gb.Error, match="expected zero, mean, constant:V or resample"):
        gb.Intervention(model, "features.7", channels=[0], value="half")
