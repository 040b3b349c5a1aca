"""The Python module gives the numbers the C++ program gives (the same library behind both):
`glassbox explain` on a checkpoint and a .npy batch writes its maps as .npy; the module's
maps for the same checkpoint, batch, methods and target must be bit for bit the same when
both were built with the same options. A module built otherwise (`pip install .` is portable,
the set-up script's build uses -march=native) rounds differently: then within 1e-5 of each
map's maximum (float32 sums in another order; the maps themselves are exact, not tolerant)."""
import numpy as np
import pytest

import glassbox as gb
from conftest import max_rel_error, run_cli, same_build

METHODS = ["lrp:epsilon-plus-flat", "lrp:epsilon-gamma-box", "gradcam", "scorecam", "saliency", "ig:steps=8",
           "smoothgrad:samples=4", "occlusion:window=7,stride=7"]


@pytest.mark.parametrize("arch", ["vgg-mini", "vgg-mini-bn"])
def test_explain_matches_the_program(arch, tmp_path):
    model = gb.create(arch, seed=5)
    ckpt = tmp_path / "model.safetensors"
    model.save(str(ckpt))
    x = np.random.default_rng(2).random((3, 1, 28, 28), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    args = ["explain", "--checkpoint", ckpt, "--array", tmp_path / "x.npy", "--target", 3, "--out", tmp_path / "out"]
    for m in METHODS:
        args += ["--method", m]
    run_cli(*args)
    # The program takes pixels in [0, 1] without normalisation: the input range of the LRP presets is [0, 1].
    trace = gb.Trace(gb.load(str(ckpt)), x, low=0.0, high=1.0)
    alike = same_build()
    for m in METHODS:
        name = m.replace(":", "_").replace(",", "_").replace("=", "_")
        cli = np.load(tmp_path / "out" / f"{name}.npy")
        if alike:
            np.testing.assert_array_equal(trace.attribute(m, target=3), cli, err_msg=m)
        else:
            assert max_rel_error(trace.attribute(m, target=3), cli) <= 1e-5, m
