"""gb.counterfactual (Wachter et al. 2017, explain/model_methods.h) against `glassbox counterfactual` and its own
definitions, on the trained vgg-mini of tests/data. The program and the module run the same library on the
same checkpoint and input: their counterfactual, difference and probability path must be bit for bit equal in
one build (within 1e-5 of the largest value for a module built with other options, as test_cli_equality.py).
The checkpoint records no normalisation, so the program's pixels are the model's input (no
normalisation) and its input range is [0, 1], which the module is given as low/high."""
import pathlib

import numpy as np
import pytest

import glassbox as gb
from conftest import max_rel_error, run_cli

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model, path of the checkpoint re-saved from its state dict, inputs [4, 1, 28, 28] in [0, 1])."""
    model = gb.load(str(DATA / "vgg_mini.model.safetensors"), arch="vgg-mini")
    path = tmp_path_factory.mktemp("cf") / "model.safetensors"
    model.save(str(path))
    x = np.random.default_rng(3).random((4, 1, 28, 28), dtype=np.float32)
    return model, path, x


def other_class(model, x):
    return int((np.argmax(model(x[None])[0]) + 3) % model.num_classes)


def softmax(logits):
    z = np.exp(logits.astype(np.float64) - logits.max())
    return z / z.sum()


@pytest.mark.parametrize("prototype_weight", [0.0, 0.2])
def test_counterfactual_matches_the_program(trained, tmp_path, prototype_weight):
    model, ckpt, x = trained
    target = other_class(model, x[0])
    np.save(tmp_path / "x.npy", x[0])
    args = ["counterfactual", "--checkpoint", ckpt, "--array", tmp_path / "x.npy", "--target", target, "--steps", 60,
            "--lr", 0.1, "--distance-weight", 0.02, "--confidence", 0.6, "--out", tmp_path / "out"]
    prototype = None
    if prototype_weight > 0:  # the program takes its prototype from Fashion-MNIST: give the module the same image
        args += ["--prototype-weight", prototype_weight]
    out = run_cli(*args)
    if prototype_weight > 0:
        import json
        source = json.loads((tmp_path / "out" / "run.json").read_text())["prototype"]
        assert source.startswith("fashion-mnist train #")
        prototype = load_fashion_train_image(int(source.rsplit("#", 1)[1]))
    r = gb.counterfactual(model, x[0], target, steps=60, lr=0.1, distance_weight=0.02, confidence=0.6,
                          prototype_weight=prototype_weight, prototype=prototype, low=0.0, high=1.0)
    assert f"(target {target}, " in out
    same_build = f"build: {gb.build_options}\n" in run_cli("info")
    for name in ("counterfactual", "difference", "probabilities"):
        cli = np.load(tmp_path / "out" / f"{name}.npy")
        got = r[name].reshape(cli.shape)
        if same_build:
            np.testing.assert_array_equal(got, cli, err_msg=name)
        else:
            assert max_rel_error(got[None], cli[None]) <= 1e-5, name
    assert r["probabilities"].shape == (r["steps"] + 1, 10)


def load_fashion_train_image(index):
    """Image `index` of Fashion-MNIST's training split in [0, 1], [1, 28, 28] (Debian's dataset-fashion-mnist, where
    `glassbox` finds it without GB_DATA_DIR)."""
    import gzip

    path = pathlib.Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
    if not path.exists():
        pytest.skip(f"{path} is missing (Debian package dataset-fashion-mnist)")
    with gzip.open(path) as f:
        f.seek(16 + index * 784)
        # As io/dataset.cpp scales IDX bytes: times the float 1/255.
        return (np.frombuffer(f.read(784), dtype=np.uint8).astype(np.float32) * (np.float32(1) / np.float32(255))).reshape(1, 28, 28)


def test_counterfactual_definitions(trained):
    model, _, x = trained
    targets = [other_class(model, x[n]) for n in range(4)]
    results = gb.counterfactual(model, x, targets, steps=200, lr=0.1, low=0.0, high=1.0)
    assert len(results) == 4
    for n, r in enumerate(results):
        assert r["target"] == targets[n]
        # The path starts at the model's softmax at x and ends at its softmax at the counterfactual (float32
        # softmax of float32 logits: 1e-6 absolute).
        np.testing.assert_allclose(r["probabilities"][0], softmax(model(x[n][None])[0]), atol=1e-6)
        last = softmax(model(r["counterfactual"][None])[0])
        np.testing.assert_allclose(r["probabilities"][-1], last, atol=1e-6)
        assert r["target_probability"] == pytest.approx(last[targets[n]], abs=1e-6)
        assert r["new_class"] == int(np.argmax(last))
        assert r["reached"] == (r["new_class"] == targets[n] and r["target_probability"] >= 0.5)
        # difference = x' - x; distance = its norm (float32 sums: 1e-5 relative).
        np.testing.assert_array_equal(r["difference"], r["counterfactual"] - x[n])
        assert r["distance"] == pytest.approx(np.linalg.norm(r["difference"].astype(np.float64)), rel=1e-5)
        assert r["counterfactual"].min() >= 0.0 and r["counterfactual"].max() <= 1.0


def test_counterfactual_errors(trained):
    model, _, x = trained
    pred = int(np.argmax(model(x[:1])[0]))
    with pytest.raises(gb.Error, match="is the model's prediction already"):
        gb.counterfactual(model, x[0], pred, low=0.0, high=1.0)
    with pytest.raises(gb.Error, match="target class 10 is outside the model's 10 classes"):
        gb.counterfactual(model, x[0], 10, low=0.0, high=1.0)
    with pytest.raises(gb.Error, match="input range is unknown"):
        gb.counterfactual(model, x[0], (pred + 1) % 10)
    with pytest.raises(gb.Error, match="needs prototypes"):
        gb.counterfactual(model, x[0], (pred + 1) % 10, prototype_weight=1.0, low=0.0, high=1.0)
    with pytest.raises(gb.Error, match="steps >= 0, lr > 0"):
        gb.counterfactual(model, x[0], (pred + 1) % 10, lr=0.0, low=0.0, high=1.0)
