"""glassbox.metrics against Quantus 0.5.3 on the same model (vgg-mini in PyTorch with seeded
random weights, loaded into glassbox from its state dict) and the same maps.

Region perturbation / AOPC (quantus.RegionPerturbation, Samek et al. 2017). Conventions that
differ, measured here and in docs/python.md:
  - Units: Quantus ranks every patch_size x patch_size window at every offset (sliding, windows
    past the right/bottom edge padded with zero relevance) and takes them greedily without
    overlap; glassbox ranks the cells of a fixed grid. On maps that are constant over the grid's
    cells (with distinct cell values) both orders are the same, and the curves agree within 1e-5
    of the largest |logit| (measured: 4.6e-7; float32 sums in another order). On a raw LRP map the orders differ and so
    do the values (test_region_perturbation_on_raw_maps measures by how much).
  - Quantus returns y(x_0) - y(x_k) for k = 1..L; glassbox's AOPC is 1/(L+1) sum_{k=0..L} of
    those (the k = 0 term is 0): aopc = sum(quantus) / (L + 1).
  - Replacement: Quantus' "black" is the minimum of the current (perturbed, edge-padded) image,
    its "uniform" one random value per channel and patch; glassbox's "black" is the input range's
    low end and its "noise" a value per pixel. Compared here with a constant (0.0 in both).
  - Scores: logits in both (RegionPerturbation's softmax=True by default is turned off).

Max-sensitivity (quantus.MaxSensitivity, Yeh et al. 2019): the same definition (uniform noise in
the L-infinity ball of the radius, max over the samples of ||phi(y) - phi(x)||_2 / ||phi(x)||_2)
with Quantus' normalise/abs turned off and no NaN for changed predictions; the noise comes from
different generators, so the per-sample maxima are compared as estimates of the same quantity:
with 30 samples each they agree within 10% on every image (measured: at most 4.5%, glassbox
lower on 3 of 4: a maximum over 30 draws; 3.4% with 100), which half the radius does not meet
(about 20% lower). Quantus' Frobenius norm of the flattened map is glassbox's L2 norm."""
import numpy as np
import pytest
import torch

import glassbox as gb
from conftest import torch_model

quantus = pytest.importorskip("quantus", reason="Quantus 0.5.3 is not installed (scripts/setup.sh installs it)")

PATCH, STEPS = 4, 16


@pytest.fixture(scope="module")
def models():
    tm = torch_model(False)
    gm = gb.from_state_dict(tm.state_dict())
    x = np.random.default_rng(5).random((4, 1, 28, 28), dtype=np.float32)
    y = gm(x).argmax(axis=1)
    return tm, gm, x, y


def grid_constant(maps):
    """Each PATCH x PATCH cell of the map set to its summed |relevance| (plus a positive offset):
    distinct cell values, so a sliding window's sum is largest on a cell."""
    n, _, h, w = maps.shape
    cells = np.abs(maps).sum(axis=1).reshape(n, h // PATCH, PATCH, w // PATCH, PATCH).sum(axis=(2, 4)) + 1.0
    return np.kron(cells, np.ones((PATCH, PATCH)))[:, None].astype(np.float32)


def quantus_region_perturbation(tm, x, y, a):
    metric = quantus.RegionPerturbation(patch_size=PATCH, regions_evaluation=STEPS, order="morf",
                                        perturb_baseline=0.0, normalise=False, abs=False, disable_warnings=True,
                                        display_progressbar=False)
    out = metric(model=tm, x_batch=x, y_batch=y, a_batch=a, device="cpu", softmax=False)
    return np.asarray(out, dtype=np.float64)  # [N, STEPS]: y(x_0) - y(x_k), k = 1..STEPS


def test_region_perturbation_matches_quantus(models):
    tm, gm, x, y = models
    maps = grid_constant(gb.attribute(gm, x, "lrp:epsilon-plus-flat", target=y.tolist()))
    q = quantus_region_perturbation(tm, x, y, maps)
    c = gb.metrics.curves(gm, x, maps, y, patch=PATCH, steps=STEPS, units_per_step=1, replacement="value", value=0.0)
    scale = np.abs(c).max()
    np.testing.assert_allclose(c[:, :1] - c[:, 1:], q, rtol=0, atol=1e-5 * scale)
    aopc = gb.metrics.aopc(gm, x, maps, y, patch=PATCH, steps=STEPS, replacement="black", low=0.0, high=1.0)
    np.testing.assert_allclose(aopc, q.sum(axis=1) / (STEPS + 1), rtol=0, atol=1e-5 * scale)


def test_region_perturbation_on_raw_maps(models):
    """On a raw map the two unit conventions (sliding windows vs a grid) pick other regions, so
    the values differ (measured on these four images: AOPC 1.4e-4, 6.7e-4, -2.0e-4, 4.6e-4 in
    glassbox against 0.8e-4, 3.8e-4, -4.1e-4, -4.3e-4 in Quantus, logits of an untrained model);
    docs/python.md says how to compare the two."""
    tm, gm, x, y = models
    lrp = gb.attribute(gm, x, "lrp:epsilon-plus-flat", target=y.tolist())
    g = gb.metrics.aopc(gm, x, lrp, y, replacement="black", low=0.0, high=1.0)
    q = quantus_region_perturbation(tm, x, y, lrp).sum(axis=1) / (STEPS + 1)
    assert not np.allclose(g, q, rtol=0.1, atol=0)


def quantus_max_sensitivity(tm, gm, x, y, radius, samples):
    def explain(model, inputs, targets, **kwargs):
        return gb.attribute(gm, np.asarray(inputs, dtype=np.float32), "saliency", target=np.asarray(targets).tolist())

    np.random.seed(0)
    metric = quantus.MaxSensitivity(nr_samples=samples, lower_bound=radius, normalise=False, abs=False,
                                    return_nan_when_prediction_changes=False, disable_warnings=True,
                                    display_progressbar=False)
    a = explain(tm, x, y)
    return np.asarray(metric(model=tm, x_batch=x, y_batch=y, a_batch=a, explain_func=explain, device="cpu"))


def test_max_sensitivity_matches_quantus(models):
    tm, gm, x, y = models
    radius, samples = 0.1, 30
    g = gb.metrics.max_sensitivity(gm, x, "saliency", y, samples=samples, radius=radius)
    q = quantus_max_sensitivity(tm, gm, x, y, radius, samples)
    assert g.shape == q.shape == (4,)
    np.testing.assert_allclose(g, q, rtol=0.10)
    half = gb.metrics.max_sensitivity(gm, x, "saliency", y, samples=samples, radius=radius / 2)
    assert not np.allclose(half, q, rtol=0.10)


def test_torch_model_is_glassbox_model(models):
    tm, gm, x, _ = models
    with torch.no_grad():
        ref = tm(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(gm(x), ref, rtol=0, atol=1e-5 * np.abs(ref).max())
