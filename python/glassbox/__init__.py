"""glassbox: neural networks whose explanations are native.

A NumPy-in, NumPy-out layer over glassbox's C++ library: load a checkpoint (or a
PyTorch state dict), record one forward pass with :class:`Trace`, and take any
number of explanations from it (LRP under any composite, gradients, the CAM
family, and every other method of the method table through :meth:`Trace.attribute`).

    import glassbox as gb
    model = gb.load("checkpoint.safetensors")
    trace = gb.Trace(model, x)                      # x: float32 [N, C, H, W]
    lrp = trace.relevance("epsilon-plus-flat")      # [N, C, H, W]
    cam = trace.cam("gradcam", layer="features.7")  # [N, 1, H, W]
    ig = gb.attribute(model, x, "ig", steps=32)
    gb.metrics.aopc(model, x, lrp)                  # per-sample metrics [N]

Arrays: float32 C-ordered CPU arrays are used in place (no copy); anything else
(other dtypes, strides, torch tensors through DLPack) is converted first. Results
are NumPy arrays. Errors raise :class:`glassbox.Error` with the library's message.
Every computing call releases the GIL.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Union

from . import _glassbox
from ._glassbox import (  # noqa: F401  (re-exported)
    CartTree,
    Composite,
    Error,
    Model,
    Rule,
    SoftTree,
    __version__,
    activation_maximisation,
    build_options,
    channel_importance,
    colormap_names,
    create,
    heatmap,
    load,
    methods,
    model_names,
    overlay,
)
from ._glassbox import from_state_dict as _from_state_dict

if TYPE_CHECKING:  # numpy is imported where it is used: nanobind's stub generator runs without it
    import numpy as np

Target = Union[None, int, str, Sequence[Union[int, str]]]

from . import metrics  # noqa: E402  (gb.metrics: per-sample evaluation metrics)

__all__ = [
    "Composite", "Error", "Model", "Rule", "Trace", "activation_maximisation", "attribute", "channel_importance",
    "colormap_names", "counterfactual", "create", "evaluate",
    "Intervention", "intervention_study",
    "from_state_dict", "heatmap", "load", "methods", "metrics", "model_names", "overlay", "train",
    "CartTree", "SoftTree", "distill",
]


def _spec_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Trace:
    """One recorded forward pass of a batch; any number of explanations come from it
    without running the model again (LRP under several composites, gradients, CAMs, ...).

    `x`: float32 [N, C, H, W] or one image [C, H, W] (used in place: do not write to it
    while the trace lives). `low`/`high`: the input's range, for the bounds of the LRP
    presets (ZBox in epsilon-gamma-box); by default the checkpoint's normalisation of
    [0, 1] pixels when it records one. `canonizer`: "batchnorm" (BatchNorm merged into
    the layer before it, as a view: the model is never changed) or "none", for the presets.

    `target` everywhere: None (the predicted class), a class index, a target text
    ("3-5": class 3 versus class 5), or a sequence with one of those per sample.
    """

    def __init__(self, model: Model, x: Any, *, low: Optional[float] = None, high: Optional[float] = None,
                 canonizer: str = "batchnorm") -> None:
        self._trace = _glassbox.Trace(model, x, low=low, high=high, canonizer=canonizer)
        self.model = model

    @property
    def logits(self) -> np.ndarray:
        """The recorded logits [N, classes]."""
        return self._trace.logits

    @property
    def input(self) -> np.ndarray:
        """The traced batch [N, C, H, W]."""
        return self._trace.input

    @property
    def layer_names(self) -> list:
        """Paths of the layers whose inputs and outputs were recorded."""
        return self._trace.layer_names

    def layer_output(self, layer: str) -> np.ndarray:
        """The output of `layer` ("features.7") in the recorded pass."""
        return self._trace.layer_output(layer)

    def layer_input(self, layer: str) -> np.ndarray:
        """The input of `layer` in the recorded pass."""
        return self._trace.layer_input(layer)

    def relevance(self, composite: Union[str, Composite] = "epsilon-plus-flat", target: Target = None,
                  layers: Sequence[str] = (), times_logit: bool = False) -> Union[np.ndarray, dict]:
        """LRP relevance at the input [N, C, H, W], starting from one-hot(target) at the output
        (times the target logit with `times_logit`). `composite`: a preset name
        (``Composite.preset_names()``) or a :class:`Composite`. With `layers`, a dict
        ``{"input": ..., layer: relevance at that layer's output}``."""
        return self._trace.relevance(composite, target, list(layers), times_logit)

    def gradient(self, target: Target = None, layers: Sequence[str] = ()) -> Union[np.ndarray, dict]:
        """Gradient of the target logit at the input (and at `layers`' outputs, as for relevance)."""
        return self._trace.gradient(target, list(layers))

    def attribute(self, method: str, target: Target = None, **params: Any) -> np.ndarray:
        """The map of `method` for this batch, from the method table (see :func:`methods`).

        `method` is a name or alias ("lrp", "gradcam", "ig", ...), optionally with its
        argument after a colon ("lrp:epsilon-gamma-box", "gradcam:features.7"); the argument
        can also be given as ``composite=`` or ``layer=``. Other keyword arguments are the
        method's parameters (``steps=32, rule="riemann_trapezoid"``), checked by the table
        (a typo gets "did you mean"). Maps are [N, C, H, W] or [N, 1, H, W].
        """
        name, _, arg = method.partition(":")
        for key in ("composite", "layer"):
            if key in params:
                if arg:
                    raise Error(f"{method}: the argument is given twice (after ':' and as {key}=)")
                arg = str(params.pop(key))
        return self._trace.attribute(name, arg, target, {k: _spec_value(v) for k, v in params.items()})

    def cam(self, method: str = "gradcam", layer: Optional[str] = None, target: Target = None,
            **params: Any) -> np.ndarray:
        """A CAM-family map [N, 1, H, W] (gradcam, gradcam++, xgradcam, layercam, scorecam) at
        `layer` (default: the last convolution), upsampled to the input's size."""
        if layer is not None:
            params["layer"] = layer
        return self.attribute(method, target, **params)

    def canonizer_note(self, canonizer: str = "batchnorm") -> str:
        """What `canonizer` does to this trace's model, in words."""
        return self._trace.canonizer_note(canonizer)

    @staticmethod
    def forward_passes() -> int:
        """Forward passes run by all traces in this process (shows that a trace is reused)."""
        return _glassbox.Trace.forward_passes()


def attribute(model: Model, x: Any, method: str, target: Target = None, *, low: Optional[float] = None,
              high: Optional[float] = None, canonizer: str = "batchnorm", **params: Any) -> np.ndarray:
    """One explanation without keeping the trace: ``Trace(model, x, ...).attribute(method, target, **params)``."""
    return Trace(model, x, low=low, high=high, canonizer=canonizer).attribute(method, target, **params)


def from_state_dict(state_dict: Mapping[str, Any], arch: str = "", *, in_channels: int = 0, input_size: int = 0,
                    num_classes: int = 0, device: str = "cpu") -> Model:
    """A model from a PyTorch-style state dict (NumPy arrays or torch tensors by name).

    ``num_batches_tracked`` counters are dropped; other values become float32 (float32 CPU
    arrays are read in place). The architecture is inferred from names and shapes
    (torchvision's VGG layout or glassbox's small one) unless `arch` names it.
    """
    import numpy as np

    arrays = {}
    for name, value in state_dict.items():
        if name.endswith("num_batches_tracked"):
            continue
        if hasattr(value, "detach"):  # a torch tensor, without importing torch
            value = value.detach().cpu().numpy()
        arrays[name] = np.ascontiguousarray(value, dtype=np.float32)
    return _from_state_dict(arrays, arch, in_channels, input_size, num_classes, device)



def evaluate(model: Model, x: Any, labels: Any, methods: Sequence[str], metrics: Sequence[str] = ("aopc", "deletion",
             "insertion"), *, batch: int = 50, patch: int = 4, aopc_steps: int = 16,
             replacements: Sequence[str] = ("noise",), steps: int = 16, blur_sigma: float = 3.0,
             sensitivity_samples: int = 10, radius: float = 0.02, seed: int = 0, low: Optional[float] = None,
             high: Optional[float] = None, canonizer: str = "batchnorm", target: Union[str, int] = "pred",
             out_dir: Optional[str] = None, progress: Optional[Any] = None) -> dict:
    """What ``glassbox evaluate`` measures, on the batch `x` [N, C, H, W] (as the model takes it)
    with true `labels` [N]: every method spec of `methods` explains the `target` class ("pred":
    the prediction, "true": the label, or a class index), scored by `metrics` (aopc, deletion,
    insertion, randomisation, sensitivity, conservation), batch by batch of `batch` images. The
    options are the program's (``--patch``, ``--aopc-steps``, ``--replacement``, ``--target``
    ...). `low`/`high`: the input range (default: the checkpoint's normalisation of [0, 1]
    pixels; required when it records none).

    Returns a dict: ``"methods"``: {spec: {"values": {column: per-image array [N]},
    "curves": {curve metric: [N, points]}, "not_applicable": {column: why} (conservation for
    methods whose maps sum to nothing in particular: no values), "randomisation": [{"layer",
    "spearman", "spearman_abs", "ssim" (means), "spearman_per_sample", ... [N]}, ...],
    "seconds": ...}}; ``"fractions"``: {curve metric: the perturbed fraction at each point};
    ``"columns"``: [(key, header), ...] in the results table's order; ``"labels"``,
    ``"predicted"``, ``"targets"`` (per image); ``"samples"``, ``"correct"``, ``"seconds"``.
    With `out_dir` (created if missing) also the program's files: results.csv, per_image.csv,
    results.md, curves.csv, plots, report.html, run.json. `progress(batch, batches, images, correct)` is called after each
    batch, with the GIL held (an exception from it stops the run).
    """
    import os

    import numpy as np

    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
    labels = [int(v) for v in np.asarray(labels).reshape(-1)]
    return _glassbox._evaluate(model, x, labels, list(methods), list(metrics), batch, patch, aopc_steps,
                               list(replacements), steps, blur_sigma, sensitivity_samples, radius, seed, low, high,
                               canonizer, str(target), "" if out_dir is None else str(out_dir), progress)


def train(*, progress: Optional[Any] = None, verbose: bool = False, **config: Any) -> dict:
    """A training run, as ``glassbox train`` (train::Trainer): the options are
    train::TrainConfig's fields, named as the program's flags with underscores: model
    ("vgg-mini"), data ("fashion-mnist"), data_dir, epochs (3), batch_size (128), optimizer
    ("sgd", "adam", "adamw"), lr (0.05), momentum, nesterov, weight_decay, schedule
    ("cosine", "step", "constant"), step_size, gamma, min_lr, warmup, seed, out_dir
    ("runs/vgg-mini"), resume, stop_after, train_limit, test_limit, crop_padding, hflip,
    save_every, device ("cpu", "cuda").

    `progress(info)` is called after every batch with the GIL held; `info` is a dict:
    epoch and epochs (1-based, in all), batch and batches, seen (images of the epoch so far),
    loss and accuracy (the epoch's running means, accuracy in 0..1) and lr. An exception
    raised by it stops training and is raised again from here; the files on disk are then
    the last good ones (the previous epoch's), from which ``resume=`` continues.
    `verbose`: the program's log on stderr.

    Returns ``{"history": [{"epoch", "lr", "train_loss", "train_acc", "test_loss",
    "test_acc", "seconds", "images_per_s"}, ...], "model": path of model.safetensors,
    "resume": path of resume.safetensors, "metrics_csv": ..., "metrics_json": ...}``.
    """
    return _glassbox._train(config, progress, verbose)


def counterfactual(model: Model, x: Any, target: Union[int, Sequence[int]], *, steps: int = 300, lr: float = 0.05,
                   distance_weight: float = 0.05, confidence: float = 0.5, prototype_weight: float = 0.0,
                   prototype: Any = None, low: Optional[float] = None,
                   high: Optional[float] = None) -> Union[dict, list]:
    """Counterfactual explanations (Wachter et al. 2017), what ``glassbox counterfactual`` runs:
    gradient descent from `x` on ``-log p_target(x') + distance_weight ||x' - x||^2`` (plus
    ``prototype_weight ||x' - prototype||^2``, Van Looveren & Klaise 2021, when it is > 0),
    ``x'`` kept in [low, high], stopping once the target is the top class with
    ``p >= confidence`` or after `steps` steps.

    `x`: one input [C, H, W] with an int `target`, or a batch [N, C, H, W] with one target per
    input, as the model takes it (normalised). `prototype`: an example of the target class,
    shaped as `x` (e.g. the nearest training image, normalised). `low`/`high`: the input range
    (default: the checkpoint's normalisation of [0, 1] pixels; required when it records none).
    A target equal to the model's prediction, or outside its classes, raises :class:`Error`.

    Returns, per input, a dict: ``counterfactual`` [C, H, W], ``difference`` (x' - x),
    ``probabilities`` [steps taken + 1, classes] (the softmax at each iterate, row 0 at x),
    ``target``, ``new_class``, ``target_probability``, ``distance`` (||x' - x||_2),
    ``steps``, ``reached``; a list of them for a batch.
    """
    import numpy as np

    single = np.ndim(x) == 3
    targets = [int(target)] if single else [int(t) for t in np.asarray(target).reshape(-1)]
    out = _glassbox._counterfactuals(model, x, targets, steps, lr, distance_weight, confidence, prototype_weight,
                                     prototype, low, high)
    return out[0] if single else out


def distill(*, progress: Optional[Any] = None, verbose: bool = False, **config: Any) -> dict:
    """A distillation run, as ``glassbox distill`` (train::run_distillation, then the report):
    a trained network (the teacher) distilled into a soft decision tree (Frosst & Hinton 2017),
    with a CART tree of the same depth as the baseline. Options, named as the program's flags
    with underscores: checkpoint (the teacher, required), model, data ("fashion-mnist"),
    data_dir, depth (8), targets ("soft": the teacher's softmax at `temperature`; "hard": the
    labels), temperature (1.0), epochs (10), batch_size (128), lr (0.01), lambda_ (0.1, the
    balance penalty; ``--lambda``), beta (1.0), seed (0), train_limit, test_limit, cart (True),
    out_dir (tree.safetensors, cart.safetensors, results.json and report.html are written there
    when given), report_images (8), report_levels (4), device ("cpu").

    `progress(info)` is called after every batch with the GIL held; `info`: epoch, epochs,
    batch, batches and loss (the epoch's running mean). An exception from it stops the run and
    is raised again here. `verbose`: the program's log on stderr.

    Returns ``{"tree": SoftTree, "history": [{"epoch", "lr", "loss", "data_loss", "penalty",
    "test_accuracy", "fidelity", "seconds"}, ...], "teacher_accuracy", "accuracy", "fidelity"
    (the most probable leaf's), "mixture_accuracy", "mixture_fidelity", "cart": CartTree,
    "cart_accuracy", "cart_fidelity" (with cart), "teacher_predictions" (on the test split),
    "tree_path", "cart_path", "results_json", "report" (paths; empty without out_dir)}``.
    Accuracy and fidelity (agreement with the teacher) are on the test split, in 0..1.
    """
    return _glassbox._distill(config, progress, verbose)


class Intervention:
    """do(a = value) on units of one layer of `model`, installed while this object is (a context manager:
    ``with gb.Intervention(model, "features.3", channels=[5]): ...``, or until :meth:`remove`). Every forward of
    the model runs intervened meanwhile: ``model(x)``, :class:`Trace` (gradients and LRP on the intervened model;
    an intervened unit passes neither to what is below it) and the metrics.

    `channels`: channels of the layer's output (every position); `units`: flat indices into one sample's
    output; neither: every unit. `value`: "zero", "constant:V", "mean" (each unit's mean over the model's
    outputs on `reference` [R, C, H, W]), "resample" (each sample takes the units of a reference input drawn
    uniformly, seeded by `seed`), or an array shaped as the layer's output for the batches to come (the values
    themselves, e.g. the units' own values: the identity). An unknown layer, a channel or unit out of range, or
    mean/resample without `reference` raise :class:`Error`.
    """

    def __init__(self, model: Model, layer: str, channels: Sequence[int] = (), units: Sequence[int] = (),
                 value: Any = "zero", reference: Any = None, seed: int = 0) -> None:
        given = None
        if not isinstance(value, str):
            import numpy as np

            given, value = np.ascontiguousarray(value, dtype=np.float32), "given"
        self._iv = _glassbox._intervention(model, layer, [int(c) for c in channels], [int(u) for u in units], value, given,
                                           reference, seed)
        self.model = model

    def describe(self) -> str:
        """``do(layer channels 1,5 := zero)``."""
        return self._iv.describe()

    def remove(self) -> None:
        """Uninstalls the intervention (idempotent)."""
        self._iv.remove()

    def __enter__(self) -> "Intervention":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def intervention_study(model: Model, x: Any, layer: str, labels: Any = None, *, channels: Sequence[int] = (),
                       value: str = "zero", reference: Any = None, seed: int = 0, batch: int = 256,
                       composite: str = "epsilon-plus-flat", ks: Sequence[int] = (), out_dir: Optional[str] = None,
                       progress: Optional[Any] = None) -> dict:
    """What ``glassbox intervene`` measures on the batch `x` [N, C, H, W] (as the model takes it): per channel c
    of `layer` (all, or `channels`), the average causal effect E_x[f_k(x) - f_k(x; do(a_c = value))] on every
    class's logit and probability, the effect on each image's predicted class (``causal``), channel importance
    (mean |a|), gradient x activation and LRP (`composite`) at the layer, the rankings, their agreement with the
    causal one (Spearman, top-k overlap), and accuracy against `labels` (or kept predictions without them) with
    each ranking's top-k channels intervened on together, for `ks` (default 1, 2, 4, ... and all).
    `value`: zero, constant:V, mean or resample (the last two need `reference` [R, C, H, W]). With `out_dir`
    (created if missing) also the program's files. `progress(done, total)` after each intervened pass.

    Returns a dict: ``channels``, ``effect_logits`` and ``effect_probabilities`` [channels, classes],
    ``causal``, ``causal_probability``, ``mean_abs``, ``grad_x_act``, ``lrp`` (per channel), ``rankings``
    {name: channels best first}, ``agreement`` [{criterion, spearman, top_k_overlap}], ``ks``, ``accuracy``,
    ``ablation_accuracy`` and ``ablation_kept`` {ranking: per k}.
    """
    import os

    import numpy as np

    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
    labels = [] if labels is None else [int(v) for v in np.asarray(labels).reshape(-1)]
    return _glassbox._intervention_study(model, x, labels, layer, [int(c) for c in channels], value, reference, seed,
                                         batch, composite, [int(k) for k in ks], "" if out_dir is None else str(out_dir),
                                         progress)
