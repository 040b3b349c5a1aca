"""Evaluation metrics for explanation maps, per sample (one value per image, as Quantus
returns them), over the C++ library's explain/metrics.h: the numbers are those of
``glassbox evaluate``.

    import glassbox as gb
    maps = gb.attribute(model, x, "lrp:epsilon-plus-flat")
    gb.metrics.aopc(model, x, maps, patch=4, steps=16, replacement="noise")   # [N]
    gb.metrics.curves(model, x, maps, mode="deletion", steps=16)              # [N, 17]
    gb.metrics.max_sensitivity(model, x, "saliency", samples=10, radius=0.02) # [N]

Units (pixels, or patch x patch squares) are ranked by the map summed over channels
and the unit, most relevant first; ties in a seeded random order. `target`: None (the
predicted class), a class index, or one per sample (a contrast "a-b" scores class a).
`low`/`high`: the input's range (a black pixel is `low`; noise is uniform in
[low, high)); by default the checkpoint's normalisation of [0, 1] pixels when it
records one. Every call is seeded (`seed`) and releases the GIL while it computes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence, Tuple, Union

from . import _glassbox
from ._glassbox import Model

if TYPE_CHECKING:
    import numpy as np

__all__ = ["aopc", "conservation", "curves", "deletion", "insertion", "max_sensitivity", "randomisation"]


def _target(target: Any) -> Any:
    """NumPy integers and arrays as the plain ints the library's target argument takes."""
    if target is None or isinstance(target, (int, str)):
        return target
    if hasattr(target, "tolist"):
        target = target.tolist()
        return target if isinstance(target, list) else int(target)
    return [t if isinstance(t, str) else int(t) for t in target]


def curves(model: Model, x: Any, maps: Any, target: Any = None, *, mode: str = "deletion", patch: int = 1,
           steps: int = 16, units_per_step: int = 0, replacement: str = "black", value: Optional[float] = None,
           low: Optional[float] = None, high: Optional[float] = None, blur_sigma: float = 2.0,
           probability: bool = False, seed: int = 0, batch: int = 256,
           return_fraction: bool = False) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
    """Perturbation curves [N, steps + 1]: the target's score (its logit, or its softmax
    probability with `probability`) as units are perturbed most relevant first.

    `mode`: "deletion" (the first m units replaced) or "insertion" (from the replacement
    image, the first m units restored). `replacement`: "black" (the constant `low`),
    "value" (the constant `value`), "noise" (uniform in [low, high)), "mean" (each
    channel's mean) or "blur" (Gaussian, `blur_sigma` pixels). `units_per_step`: 0 spreads
    all units over `steps`; else that many units per step (AOPC's 1). With
    `return_fraction`, ``(fraction [steps + 1], curves)``: the fraction of units perturbed
    at each point.
    """
    if mode not in ("deletion", "insertion"):
        raise _glassbox.Error(f"mode '{mode}': expected deletion or insertion")
    out = _glassbox._perturbation_curves(model, x, maps, _target(target), mode == "insertion", patch, steps,
                                         units_per_step, replacement, value, low, high, blur_sigma, probability,
                                         seed, batch)
    return (out["fraction"], out["values"]) if return_fraction else out["values"]


def aopc(model: Model, x: Any, maps: Any, target: Any = None, *, patch: int = 4, steps: int = 16,
         replacement: str = "noise", low: Optional[float] = None, high: Optional[float] = None,
         blur_sigma: float = 3.0, seed: int = 0, batch: int = 256) -> np.ndarray:
    """AOPC per sample [N] (Samek et al. 2017): 1/(L+1) sum_{k=0..L} (f(x_0) - f(x_k)) on the
    target's logit, with the `steps` = L most relevant patch x patch squares replaced one per
    step by `replacement` (noise, mean, blur, black). Higher is better. The defaults are
    ``glassbox evaluate``'s (its column aopc-<replacement>)."""
    out = _glassbox._perturbation_curves(model, x, maps, _target(target), False, patch, steps, 1, replacement,
                                         None, low, high, blur_sigma, False, seed, batch)
    return out["aopc"]


def deletion(model: Model, x: Any, maps: Any, target: Any = None, *, steps: int = 16, low: Optional[float] = None,
             high: Optional[float] = None, seed: int = 0, batch: int = 256) -> np.ndarray:
    """Deletion area per sample [N] (Petsiuk et al. 2018): the trapezoid area under the target's
    probability as pixels go black most relevant first, over the fraction deleted in [0, 1].
    Lower is better. ``glassbox evaluate``'s column deletion."""
    out = _glassbox._perturbation_curves(model, x, maps, _target(target), False, 1, steps, 0, "black", None, low,
                                         high, 2.0, True, seed, batch)
    return out["area"]


def insertion(model: Model, x: Any, maps: Any, target: Any = None, *, steps: int = 16, blur_sigma: float = 3.0,
              seed: int = 0, batch: int = 256) -> np.ndarray:
    """Insertion area per sample [N] (Petsiuk et al. 2018): pixels restored most relevant first
    into the input blurred with `blur_sigma`, the area under the target's probability. Higher
    is better. ``glassbox evaluate``'s column insertion."""
    out = _glassbox._perturbation_curves(model, x, maps, _target(target), True, 1, steps, 0, "blur", None, None,
                                         None, blur_sigma, True, seed, batch)
    return out["area"]


def max_sensitivity(model: Model, x: Any, method: str = "saliency", target: Any = None, *, samples: int = 10,
                    radius: float = 0.02, seed: int = 0, low: Optional[float] = None, high: Optional[float] = None,
                    canonizer: str = "batchnorm") -> np.ndarray:
    """Max-sensitivity per sample [N] (Yeh et al. 2019): over `samples` inputs y uniform in the
    L-infinity ball of `radius` around x, max ||phi(y) - phi(x)||_2 / ||phi(x)||_2, phi the map
    of `method` (a method spec, "lrp:epsilon-gamma-box", "ig:steps=16", ...) for the target
    class of x. Lower is better. `low`/`high`/`canonizer`: for the LRP presets, as in Trace."""
    return _glassbox._max_sensitivity(model, x, method, _target(target), samples, radius, seed, low, high, canonizer)


def randomisation(model: Model, x: Any, method: str = "saliency", target: Any = None, *, seed: int = 0,
                  low: Optional[float] = None, high: Optional[float] = None, canonizer: str = "batchnorm") -> list:
    """Cascading model randomisation (Adebayo et al. 2018): the layers with weights are
    re-initialised from the output down, and after each the maps of `method` are compared with
    the original ones. A list, one dict per step: ``{"layer", "spearman", "spearman_abs",
    "ssim"}`` (means over samples) and ``"spearman_per_sample"``, ``"spearman_abs_per_sample"``,
    ``"ssim_per_sample"`` ([N] each, Quantus' shape). The model's weights are written during the call and
    restored after it (also on error): do not use the model from another thread meanwhile."""
    return _glassbox._randomisation(model, x, method, _target(target), seed, low, high, canonizer)


def conservation(maps: Any, expected: Union[float, Sequence[float]] = 1.0) -> np.ndarray:
    """Relevance conservation error per sample [N]: |sum of the map - expected| / |expected|.
    `expected`: one value for all (1.0: LRP from a one-hot seed) or one per sample (the target
    logits, for relevance taken with ``times_logit=True``)."""
    import numpy as np

    return _glassbox._conservation(maps, np.atleast_1d(np.asarray(expected, dtype=np.float64)).tolist())
