"""The Python API itself: arrays in and out without copies, errors as glassbox.Error with the
library's text, one trace serving many explanations, the GIL released while computing."""
import threading

import numpy as np
import pytest

import glassbox as gb


@pytest.fixture(scope="module")
def model():
    return gb.create("vgg-mini", seed=1)


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)


def test_input_is_used_in_place_and_converted_otherwise(model, x):
    t = gb.Trace(model, x)
    assert np.shares_memory(t.input, x)  # float32, C order: no copy
    t64 = gb.Trace(model, x.astype(np.float64))  # converted (a copy), same numbers
    assert not np.shares_memory(t64.input, x)
    np.testing.assert_array_equal(t64.logits, t.logits)
    strided = np.asfortranarray(x)
    np.testing.assert_array_equal(gb.Trace(model, strided).logits, t.logits)


def test_one_image_and_the_model_call(model, x):
    np.testing.assert_array_equal(model(x[0])[0], model(x)[0])
    assert model(x).shape == (3, 10)
    assert model.name == "vgg-mini" and model.num_classes == 10 and model.in_channels == 1


def test_one_trace_serves_every_explanation(model, x):
    before = gb.Trace.forward_passes()
    t = gb.Trace(model, x, low=0.0, high=1.0)
    assert gb.Trace.forward_passes() == before + 1
    lrp = t.relevance("epsilon-plus-flat")
    box = t.relevance("epsilon-gamma-box", target=2)
    grad = t.gradient()
    cam = t.cam("gradcam", layer="features.7")
    gxi = t.attribute("gradxinput")
    assert gb.Trace.forward_passes() == before + 1  # none of them ran the model again
    assert lrp.shape == box.shape == grad.shape == gxi.shape == (3, 1, 28, 28) and cam.shape == (3, 1, 28, 28)
    # gradient x input is the input times the gradient (closed form, exact in float32)
    np.testing.assert_array_equal(gxi, grad * x)
    # relevance at a layer: a dict with the input's and the layer's maps
    both = t.relevance("epsilon-plus-flat", layers=["features.4"])
    np.testing.assert_array_equal(both["input"], lrp)
    assert both["features.4"].shape == t.layer_output("features.4").shape


def test_targets(model, x):
    t = gb.Trace(model, x)
    pred = t.logits.argmax(axis=1)
    np.testing.assert_array_equal(t.gradient(), t.gradient(target=[int(c) for c in pred]))
    np.testing.assert_array_equal(t.gradient(target=4), t.gradient(target="4"))
    contrast = t.gradient(target="4-7")
    np.testing.assert_allclose(contrast, t.gradient(target=4) - t.gradient(target=7), rtol=1e-5, atol=1e-7)


def test_composites_by_name_and_type(model, x):
    t = gb.Trace(model, x)
    # a composite built by layer type equals the preset it spells out (EpsilonPlus: Epsilon on Linear, ZPlus on conv)
    custom = gb.Composite("mine").by_type("conv", gb.Rule.zplus()).by_type("linear", gb.Rule.epsilon(1e-6))
    np.testing.assert_array_equal(t.relevance(custom), t.relevance("epsilon-plus"))
    # a per-name rule changes only what it should: Flat on the first layer is epsilon-plus-flat
    flat_first = gb.Composite().by_type("conv", gb.Rule.zplus()).by_type("linear", gb.Rule.epsilon(1e-6)) \
        .by_name("features.0", gb.Rule.flat())
    np.testing.assert_array_equal(t.relevance(flat_first), t.relevance("epsilon-plus-flat"))


def test_errors_carry_the_library_text(model, x, tmp_path):
    t = gb.Trace(model, x)
    with pytest.raises(gb.Error, match="did you mean 'steps'"):
        t.attribute("ig", stepz=8)
    with pytest.raises(gb.Error, match="unknown method 'igg'"):
        t.attribute("igg")
    with pytest.raises(gb.Error, match="features.99"):
        t.layer_output("features.99")
    with pytest.raises(gb.Error, match="epsilon-gamma-box"):
        t.relevance("epsilon-gamma-box")  # no input range known: never assumed
    with pytest.raises(gb.Error, match="nothing.safetensors"):
        gb.load(str(tmp_path / "nothing.safetensors"))
    with pytest.raises(gb.Error, match="layer type 'lstm'"):
        gb.Composite().by_type("lstm", gb.Rule.flat())
    assert issubclass(gb.Error, RuntimeError)


def test_save_load_round_trip(model, x, tmp_path):
    path = tmp_path / "m.safetensors"
    model.save(str(path))
    again = gb.load(str(path))
    np.testing.assert_array_equal(again(x), model(x))
    state = model.state_dict()
    np.testing.assert_array_equal(gb.from_state_dict(state)(x), model(x))
    assert set(state) == {k for k in again.state_dict()}


def test_methods_table(model, x):
    table = {m["name"]: m for m in gb.methods()}
    assert {"lrp", "gradcam", "ig", "smoothgrad", "occlusion", "lime", "kernelshap"} <= set(table)
    assert any(p["key"] == "steps" for p in table["ig"]["params"])
    t = gb.Trace(model, x[:1])
    for name, m in table.items():  # every method of the table runs from Python
        params = {"samples": 4} if any(p["key"] == "samples" for p in m["params"]) else {}
        if any(p["key"] == "steps" for p in m["params"]):
            params["steps"] = 4
        arg = "epsilon-plus-flat" if name == "lrp" else ""
        out = t.attribute(f"{name}:{arg}" if arg else name, **params)
        assert out.shape[0] == 1 and out.shape[2:] == (28, 28) and np.isfinite(out).all(), name


def test_heatmaps(model, x):
    t = gb.Trace(model, x)
    rgb = gb.heatmap(t.relevance())
    assert rgb.shape == (3, 28, 28, 3) and rgb.dtype == np.uint8
    assert gb.heatmap(np.zeros((28, 28), np.float32)).reshape(-1, 3).tolist()[0] == gb.heatmap(
        np.zeros((28, 28), np.float32))[0, 0].tolist()
    over = gb.overlay(x, t.relevance(), alpha=0.0)  # alpha 0: the image itself, grey replicated
    np.testing.assert_array_equal(over[..., 0], np.round(x[:, 0] * 255).astype(np.uint8))
    with pytest.raises(gb.Error, match="alpha"):
        gb.overlay(x, t.relevance(), alpha=2.0)
    # The opacity follows |relevance| (explain/heatmap.h): out = round((1 - a) * image + a * colour),
    # a = alpha * |v| / max|v|. Zero relevance leaves the image bit-identical at any alpha; the largest |v| gets alpha.
    img = x[0, 0]
    base = np.round(img * 255)
    np.testing.assert_array_equal(gb.overlay(x[0], np.zeros((28, 28), np.float32), alpha=1.0)[..., 1], base)
    r = np.zeros((28, 28), np.float32)
    r[3, 4], r[5, 6], r[7, 8] = -2.0, 1.0, 2.0
    over, heat = gb.overlay(x[0], r, alpha=0.6).astype(np.float64), gb.heatmap(r).astype(np.float64)
    a = 0.6 * np.abs(r) / 2.0
    expect = np.floor((1 - a[..., None]) * np.round(np.repeat(img[..., None], 3, axis=2) * 255) + a[..., None] * heat + 0.5)
    np.testing.assert_allclose(over, expect, atol=1)  # float32 rounding in C++ against float64 here: at most 1 step
    np.testing.assert_array_equal(over[r == 0], np.repeat(base[r == 0][:, None], 3, axis=1))


def test_gil_is_released_while_computing(model):
    big = np.random.default_rng(1).random((16, 1, 28, 28), dtype=np.float32)
    t = gb.Trace(model, big)
    count, stop = [0], threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1

    th = threading.Thread(target=spin)
    th.start()
    try:
        before = count[0]
        t.attribute("ig", steps=64)  # ~1e8 flops in C++; the other thread runs meanwhile only without the GIL
        during = count[0] - before
    finally:
        stop.set()
        th.join()
    assert during > 100_000, during  # held GIL: at most one switch interval (5 ms) of spinning


def test_torch_tensors_through_dlpack(model, x):
    import torch  # the tests need it (conftest); the module itself never imports it
    xt = torch.from_numpy(x)
    t = gb.Trace(model, xt)
    np.testing.assert_array_equal(t.logits, gb.Trace(model, x).logits)
    assert np.shares_memory(t.input, x)  # a float32 CPU tensor is read in place, as a NumPy array is
    sd = gb.from_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    np.testing.assert_array_equal(sd(x), model(x))
