#!/usr/bin/env python3
"""Regenerate (or check) the explanation references in tests/data/*.safetensors.

    scripts/references.sh            # rewrite tests/data/*.safetensors
    scripts/references.sh --check    # regenerate into a temp folder and compare with tests/data

(scripts/references.sh makes the pinned Python environment; this script may also be run
directly by a Python that has the pinned packages: see PINS.)

Every explanation value comes from the library it is a reference for: Zennit 0.5.1 for LRP
(composites and single-layer rules), Captum 0.8.0 for the gradient methods and Grad-CAM, and
pytorch-grad-cam 1.5.5's formulas, transcribed below (its package needs ttach, which Debian
lacks), for the pytorch-grad-cam CAM family. Everything runs single-threaded on the CPU with
PyTorch's default float32 kernels (oneDNN convolutions, OpenBLAS GEMMs), so a rerun on the same
CPU type reproduces every file bit for bit; another CPU may change the last bits of float
results, which the stored tolerances absorb (--check reports by how much). OpenBLAS's SGEMM
blocking is set to the one the files were made with (use_cooperlake_sgemm_blocking).

Seed data. Two kinds of tensors are inputs to this script rather than results of it:
  * the single-layer cases (rules_*.safetensors) are made here from their seeds: the layer is
    PyTorch's default init after torch.manual_seed(seed); input.pos = rand, input.mixed =
    2*rand-1, relevance_out = randn from torch.Generator().manual_seed(seed).
  * the two models' parameters (vgg_mini*.model.safetensors) and their input batch and labels
    (`input`, `label` in vgg_mini*.data.safetensors) are FROZEN SEED DATA: they were made by the
    original generator (seeded training on a synthetic task, see tests/data/README.md), which is
    not in the repository and whose exact recipe (template interpolation, order of random draws)
    is not recorded precisely enough to redo bit for bit. This script reads them from the
    existing files (--seed-dir, default tests/data) and writes them back unchanged. A new model
    family brings its own seed data (see "How to add a reference" in tests/data/README.md).
Everything else -- targets, logits, activations, every explanation, every tolerance and all
metadata -- is recomputed.

Tolerances (tests/data/README.md, "Tolerance rule"): each derived tensor is computed three
times: stored float32, float64 (same code, model and inputs cast to float64) and float32 with
oneDNN disabled (PyTorch's native convolutions). measured = the larger of the two per-sample
relative discrepancies; tol = max(1e-5, 10 * measured) rounded up to 1/2/5 x 10^k.
"""
import argparse
import collections
import contextlib
import json
import os
import shutil
import struct
import sys
import tempfile
import warnings

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vgg_mini import VGGMini  # the script's folder is on sys.path when it runs

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "data"))

# Pinned versions: the metadata below names them, so a run with anything else would write false
# metadata (and other numbers). scripts/references.sh installs exactly these.
PINS = {"torch": "1.13.0a0", "numpy": "1.24.2", "cv2": "4.6.0", "zennit": "0.5.1", "captum": "0.8.0"}

COMMON_META = collections.OrderedDict([
    ("format", "glassbox-reference-1"),
    ("description", None),  # per file
    ("generator", "glassbox reference generator (seeded, PyTorch + Zennit + Captum)"),
    ("zennit", "Zennit 0.5.1 (git tag 0.5.1, 3121bb223061506834ca68abad3eefc792dea999)"),
    ("captum", "Captum 0.8.0 (git tag v0.8.0, fc17d5070c5447593749ce28f9602c7ae58d54ac)"),
    ("pytorch_grad_cam", "pytorch-grad-cam 1.5.5 (git 084273b3f30b54ad0c64cf8020a4337d979a66e0), its formulas "
                         "transcribed to numpy because the package needs ttach (not in Debian)"),
    ("torch", "torch 1.13.0a0 (Debian python3-torch 1.13.1+dfsg-4), numpy 1.24.2, OpenCV 4.6.0"),
    ("tolerance_rule", "for every sample b (dim 0): max_i |got[b,i]-ref[b,i]| <= tol * S_b, S_b = max_i |ref[b,i]| "
                       "(if 0: max over the whole tensor)"),
])


# ----------------------------------------------------------------------------------------------
# safetensors writer and reader. The files keep the generator's tensor order (the safetensors
# package would sort by dtype and name) and put __metadata__ first: compact JSON, padded with
# spaces to a multiple of 8 bytes.

DTYPES = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8")}
NP_DTYPES = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8")}


def write_safetensors(path, tensors, metadata):
    header = collections.OrderedDict([("__metadata__", metadata)])
    blobs, offset = [], 0
    for name, t in tensors.items():
        code, np_dtype = DTYPES[t.dtype]
        data = np.ascontiguousarray(t.detach().cpu().numpy()).astype(np_dtype, copy=False).tobytes()
        header[name] = collections.OrderedDict([("dtype", code), ("shape", list(t.shape)),
                                                ("data_offsets", [offset, offset + len(data)])])
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """(OrderedDict name -> torch tensor, metadata OrderedDict), in file order."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n], object_pairs_hook=collections.OrderedDict)
    meta = header.pop("__metadata__", collections.OrderedDict())
    out = collections.OrderedDict()
    for name, h in header.items():
        begin, end = h["data_offsets"]
        arr = np.frombuffer(raw[8 + n + begin:8 + n + end], dtype=NP_DTYPES[h["dtype"]]).reshape(h["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out, meta


# ----------------------------------------------------------------------------------------------
# Tolerances.

def per_sample_rel(got, ref):
    """Per sample b: max_i |got-ref| / S_b (the tolerance rule's measure), as a float64 array."""
    got = got.detach().double().reshape(ref.shape[0], -1)
    ref = ref.detach().double().reshape(ref.shape[0], -1)
    scale = ref.abs().max(dim=1).values
    scale = torch.where(scale > 0, scale, ref.abs().max())
    diff = (got - ref).abs()
    return diff, scale


def rel_max(got, ref):
    diff, scale = per_sample_rel(got, ref)
    return float((diff.max(dim=1).values / scale).max()) if diff.numel() else 0.0


def rel_p99(got, ref):
    diff, scale = per_sample_rel(got, ref)
    return float(max(np.percentile((diff[b] / scale[b]).numpy(), 99) for b in range(diff.shape[0])))


def round_up_125(x):
    """Smallest 1, 2 or 5 x 10^k >= x."""
    k = int(np.floor(np.log10(x)))
    for e in (k - 1, k, k + 1):
        for m in (1, 2, 5):
            v = float(f"{m}e{e}")
            if v >= x * (1 - 1e-12):
                return v
    raise AssertionError(x)


def tolerance(measured):
    return round_up_125(max(1e-5, 10 * measured))


def fmt_tol(v):
    return f"{v:.0e}"


# ----------------------------------------------------------------------------------------------
# One file: an ordered list of entries. A source entry is stored as given (seed data); a derived
# entry is produced by compute(dtype) and gets tol/f32_vs_f64/f32_vs_f32native metadata.

class Entry:
    def __init__(self, name, desc, source=None, tol99=False):
        self.name, self.desc, self.source, self.tol99 = name, desc, source, tol99


class RefFile:
    def __init__(self, filename, description, extra_meta, entries, compute, exact_fold=None):
        self.filename = filename
        self.description = description
        self.extra_meta = extra_meta          # [(key, value)] after the common keys
        self.entries = entries                 # [Entry]
        self.compute = compute                 # dtype -> {name: tensor} for the derived entries
        self.exact_fold = exact_fold           # optional () -> {name: tensor}: the BN exact-fold run

    def build(self):
        derived = [e for e in self.entries if e.source is None]
        results = {}
        if derived:
            f32 = self.compute(torch.float32)
            f64 = self.compute(torch.float64)
            with torch.backends.mkldnn.flags(enabled=False):
                native = self.compute(torch.float32)
            fold = self.exact_fold() if self.exact_fold else {}
            results = (f32, f64, native, fold)
        meta = collections.OrderedDict()
        for k, v in COMMON_META.items():
            meta[k] = self.description if k == "description" else v
        for k, v in self.extra_meta:
            meta[k] = v
        tensors = collections.OrderedDict()
        for e in self.entries:
            if e.source is not None:
                tensors[e.name] = e.source
                if e.desc is not None:
                    meta["desc." + e.name] = e.desc
                continue
            f32, f64, native, fold = results
            ref = f32[e.name].detach().to(torch.float32).contiguous()
            tensors[e.name] = ref
            # The other run is the reference here (S_b from it), the stored float32 the candidate.
            vs64 = rel_max(ref, f64[e.name])
            vsnat = rel_max(ref, native[e.name])
            tol = tolerance(max(vs64, vsnat))
            reason = None
            if e.name in fold:
                # BatchNorm folding: Zennit keeps the merged BN's eps, an exact fold does not; both
                # must pass, so the tolerance covers twice their difference (README, BN section).
                d = rel_max(ref, fold[e.name])
                raised = round_up_125(2 * d)
                if raised > tol:
                    tol = raised
                    reason = f"widened to 2x the {d:.2e} difference to an exact BN fold (see README)"
            meta["desc." + e.name] = e.desc
            meta["tol." + e.name] = fmt_tol(tol)
            if e.tol99:
                p99 = max(rel_p99(ref, f64[e.name]), rel_p99(ref, native[e.name]))
                meta["tol99." + e.name] = fmt_tol(tolerance(p99))
            meta["f32_vs_f64." + e.name] = f"{vs64:.2e}"
            meta["f32_vs_f32native." + e.name] = f"{vsnat:.2e}"
            if reason:
                meta["tol_reason." + e.name] = reason
        return tensors, meta


# ----------------------------------------------------------------------------------------------
# Single-layer rule cases (rules_*.safetensors): Zennit rules registered directly on one layer.

def zennit_rules():
    from zennit.rules import AlphaBeta, Epsilon, Flat, Gamma, WSquare, ZBox, ZPlus
    return [
        ("epsilon", "Zennit Epsilon(epsilon=1e-6)", lambda: Epsilon(epsilon=1e-6)),
        ("lrp0", "Zennit Epsilon(epsilon=0), i.e. LRP-0", lambda: Epsilon(epsilon=0)),
        ("zplus", "Zennit ZPlus(stabilizer=1e-6)", lambda: ZPlus(stabilizer=1e-6)),
        ("alpha2beta1", "Zennit AlphaBeta(alpha=2, beta=1)", lambda: AlphaBeta(alpha=2, beta=1)),
        ("alpha1beta0", "Zennit AlphaBeta(alpha=1, beta=0)", lambda: AlphaBeta(alpha=1, beta=0)),
        ("gamma0.25", "Zennit Gamma(gamma=0.25) (Zennit 0.5 generalised)", lambda: Gamma(gamma=0.25)),
        ("zbox", "Zennit ZBox(low=-1, high=1)", lambda: ZBox(low=-1, high=1)),
        ("flat", "Zennit Flat()", lambda: Flat()),
        ("wsquare", "Zennit WSquare()", lambda: WSquare()),
    ]


def norm_rules():
    from zennit.rules import Norm
    return [("norm", "Zennit Norm()", lambda: Norm())]


# name -> (layer factory, input shape, seed, rules). The seed of each layer was chosen by the
# original generator (among 256 candidates) to minimise the LRP-0 condition number
# max_j (sum_i |x_i w_ij| + |b_j|) / |z_j| over both inputs (tests/data/README.md gives the
# resulting smallest |z| and condition number); the seeds are fixed here.
RULE_CASES = collections.OrderedDict([
    ("conv2d", (lambda: nn.Conv2d(3, 5, 3, padding=1), (2, 3, 6, 6), 123, zennit_rules)),
    ("linear", (lambda: nn.Linear(20, 7), (3, 20), 226, zennit_rules)),
    ("avgpool2d", (lambda: nn.AvgPool2d(2), (2, 3, 6, 6), 392, norm_rules)),
])


def rule_file(kind):
    make_layer, shape, seed, rules = RULE_CASES[kind]
    torch.manual_seed(seed)
    layer = make_layer()
    g = torch.Generator().manual_seed(seed)
    x_pos = torch.rand(shape, generator=g)
    x_mixed = torch.rand(shape, generator=g) * 2 - 1
    out_shape = layer(x_pos).shape
    r_out = torch.randn(out_shape, generator=g)
    rules = rules()

    def compute(dtype):
        lay = make_layer()
        lay.load_state_dict(layer.state_dict())
        lay = lay.to(dtype)
        res = {}
        for tag, x in (("pos", x_pos), ("mixed", x_mixed)):
            with torch.no_grad():
                res[f"output.{tag}"] = lay(x.to(dtype))
        for rname, _, make_rule in rules:
            for tag, x in (("pos", x_pos), ("mixed", x_mixed)):
                handles = make_rule().register(lay)
                try:
                    xi = x.to(dtype).requires_grad_(True)
                    res[f"relevance_in.{rname}.{tag}"], = torch.autograd.grad(
                        lay(xi), xi, grad_outputs=r_out.to(dtype))
                finally:
                    handles.remove()
        return res

    entries = []
    if isinstance(layer, (nn.Conv2d, nn.Linear)):
        entries += [Entry("weight", "layer weight (PyTorch layout)", layer.weight.detach().clone()),
                    Entry("bias", "layer bias", layer.bias.detach().clone())]
    entries += [Entry("input.pos", "positive input, U(0,1)", x_pos),
                Entry("input.mixed", "mixed-sign input, U(-1,1)", x_mixed),
                Entry("relevance_out", "output relevance (same for both inputs), N(0,1)", r_out),
                Entry("output.pos", "forward output for input.pos"),
                Entry("output.mixed", "forward output for input.mixed")]
    for rname, rdesc, _ in rules:
        for tag in ("pos", "mixed"):
            entries.append(Entry(f"relevance_in.{rname}.{tag}", f"{rdesc}: input relevance for input.{tag}"))
    return RefFile(f"rules_{kind}.safetensors", f"single-layer LRP rules on {kind}", [("layer", repr(layer))],
                   entries, compute)


# ----------------------------------------------------------------------------------------------
# The models.

# VGGMini: tests/python/vgg_mini.py (shared with the Python module's tests).


# Per model: where the hooks go. first_pool/last_pool: relevance and activation probes;
# last_conv: the Grad-CAM layer (and activation probe); cam_layers: the pgc CAM layers with words.
MODELS = collections.OrderedDict([
    ("vgg_mini", dict(
        name="vgg-mini", bn=False, first_pool="features.4", last_conv="features.7", last_pool="features.9",
        conv_note="last Conv2d, pre-ReLU",
        composites=["epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1", "epsilon_alpha2_beta1_flat",
                    "epsilon_plus", "epsilon", "epsilon.onehot_logit"],
        lrp_description="vgg-mini: Zennit LRP composites",
        gradient_description="vgg-mini: Captum gradient methods",
        gradcam_in_gradient=None,
        cam_layers=[("features.7", "last conv; its output, pre-ReLU"),
                    ("features.8", "ReLU after the last conv; post-ReLU")],
        model_description="vgg-mini parameters (PyTorch state_dict names)")),
    ("vgg_mini_bn", dict(
        name="vgg-mini-bn", bn=True, first_pool="features.6", last_conv="features.10", last_pool="features.13",
        conv_note="last Conv2d, pre-BN",
        composites=["epsilon_plus_flat", "epsilon_gamma_box"],
        lrp_description="vgg-mini-bn: Zennit LRP composites with SequentialMergeBatchNorm",
        gradient_description="vgg-mini-bn: Captum gradient methods and Grad-CAM",
        gradcam_in_gradient=("features.10", "last conv; its output, pre-BatchNorm"),
        cam_layers=[],
        model_description="vgg-mini-bn parameters (PyTorch state_dict names, num_batches_tracked omitted)")),
])


def load_model(state, bn, dtype):
    model = VGGMini(bn)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    return model.to(dtype).eval()


def module(model, name):
    return dict(model.named_modules())[name]


def choose_targets(logits):
    """Samples 0 and 1: the predicted class; sample 2: the second-highest logit; sample 3: the lowest."""
    order = logits.argsort(dim=1, descending=True)
    return torch.tensor([int(order[0, 0]), int(order[1, 0]), int(order[2, 1]), int(order[3, -1])], dtype=torch.int64)


@contextlib.contextmanager
def output_probes(model, names):
    """Records each named module's forward output, and the gradient that reaches it in backward."""
    acts, grads, handles = {}, {}, []

    def hook(name):
        def fn(mod, inp, out):
            acts[name] = out
            if out.requires_grad:
                out.register_hook(lambda g: grads.__setitem__(name, g))
        return fn

    for n in names:
        handles.append(module(model, n).register_forward_hook(hook(n)))
    try:
        yield acts, grads
    finally:
        for h in handles:
            h.remove()


# ---- LRP (Zennit) ----

def make_composite(key, bn):
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import (EpsilonAlpha2Beta1, EpsilonAlpha2Beta1Flat, EpsilonGammaBox, EpsilonPlus,
                                   EpsilonPlusFlat, LayerMapComposite)
    from zennit.rules import Epsilon, Pass
    from zennit.types import Activation, Convolution
    kw = {"canonizers": [SequentialMergeBatchNorm()]} if bn else {}
    if key == "epsilon_plus_flat":
        return EpsilonPlusFlat(**kw)
    if key == "epsilon_gamma_box":
        return EpsilonGammaBox(low=0.0, high=1.0, **kw)
    if key == "epsilon_alpha2_beta1":
        return EpsilonAlpha2Beta1(**kw)
    if key == "epsilon_alpha2_beta1_flat":
        return EpsilonAlpha2Beta1Flat(**kw)
    if key == "epsilon_plus":
        return EpsilonPlus(**kw)
    if key == "epsilon":
        return LayerMapComposite([(Activation, Pass()), (Convolution, Epsilon(1e-6)), (nn.Linear, Epsilon(1e-6))], **kw)
    raise KeyError(key)


def composite_words(key, bn):
    canon = "canonizers=[SequentialMergeBatchNorm()]" if bn else ""
    words = {
        "epsilon_plus_flat": f"Zennit EpsilonPlusFlat({canon})",
        "epsilon_gamma_box": "Zennit EpsilonGammaBox(low=0.0, high=1.0" + (", " + canon if bn else "") + ")",
        "epsilon_alpha2_beta1": f"Zennit EpsilonAlpha2Beta1({canon})",
        "epsilon_alpha2_beta1_flat": f"Zennit EpsilonAlpha2Beta1Flat({canon})",
        "epsilon_plus": f"Zennit EpsilonPlus({canon})",
        "epsilon": "all-Epsilon: Epsilon(1e-6) on every Conv2d/Linear, Pass on ReLU",
    }
    return words[key]


def lrp(model, x, target, key, bn, probes):
    """Zennit Gradient attribution of one composite; returns input relevance and probe relevances."""
    from zennit.attribution import Gradient
    comp_key, _, start = key.partition(".")
    onehot = F.one_hot(target, 10).to(x.dtype)
    attr_output = (lambda out: onehot * out) if start == "onehot_logit" else onehot
    with output_probes(model, probes) as (_, grads):
        with Gradient(model=model, composite=make_composite(comp_key, bn)) as attributor:
            _, relevance = attributor(x, attr_output)
    return relevance, {p: grads[p] for p in probes}


def lrp_results(spec, state, x, target, dtype, fold_exact=False):
    bn = spec["bn"]
    model = load_model(state, bn, dtype)
    if fold_exact:
        model = exact_fold(model)
        bn = False
    probes = [spec["first_pool"], spec["last_pool"]]
    res = {}
    for key in spec["composites"]:
        rel, layer_rel = lrp(model, x.to(dtype), target, key, bn, probes)
        res[f"lrp.{key}"] = rel
        for p in probes:
            res[f"lrp.{key}.layer_out.{p}"] = layer_rel[p]
    return res


def exact_fold(model):
    """Copy whose convs hold the exactly folded BN parameters and whose BNs are identities.

    The fold is computed in float64 and rounded once to the model's dtype (the correctly rounded
    folded parameters)."""
    feats = list(model.features)
    for i, m in enumerate(feats):
        if isinstance(m, nn.BatchNorm2d):
            conv = feats[i - 1]
            s = m.weight.detach().double() / torch.sqrt(m.running_var.double() + m.eps)
            with torch.no_grad():
                conv.weight.copy_(conv.weight.double() * s[:, None, None, None])
                conv.bias.copy_((conv.bias.double() - m.running_mean.double()) * s + m.bias.double())
            feats[i] = nn.Identity()
    model.features = nn.Sequential(*feats)
    return model


# ---- Captum gradient methods ----

def captum_gradient_results(spec, state, x, target, dtype):
    from captum.attr import DeepLift, GuidedBackprop, InputXGradient, IntegratedGradients, Saliency
    model = load_model(state, spec["bn"], dtype)
    x = x.to(dtype)
    res = collections.OrderedDict()
    res["grad"] = Saliency(model).attribute(x, target=target, abs=False)
    res["saliency"] = Saliency(model).attribute(x, target=target, abs=True)
    res["input_x_gradient"] = InputXGradient(model).attribute(x, target=target)
    ig = IntegratedGradients(model)
    res["ig.gausslegendre.n50"] = ig.attribute(x, target=target, n_steps=50, method="gausslegendre")
    res["ig.riemann_trapezoid.n32"] = ig.attribute(x, target=target, n_steps=32, method="riemann_trapezoid")
    res["deeplift"] = DeepLift(load_model(state, spec["bn"], dtype)).attribute(x, target=target)
    res["guided_backprop"] = GuidedBackprop(load_model(state, spec["bn"], dtype)).attribute(x, target=target)
    if spec["gradcam_in_gradient"]:
        layer = spec["gradcam_in_gradient"][0]
        res.update(captum_gradcam(model, layer, x, target))
    return res


def captum_gradcam(model, layer, x, target):
    from captum.attr import LayerGradCam
    gc = LayerGradCam(model, module(model, layer)).attribute(x, target=target, relu_attributions=True)
    up = F.interpolate(gc, size=(28, 28), mode="bilinear", align_corners=False)
    return {f"gradcam.{layer}": gc, f"gradcam.{layer}.up28": up}


# ---- pytorch-grad-cam, transcribed (084273b3f30b54ad0c64cf8020a4337d979a66e0) ----
# Same numpy/torch/cv2 calls in the same order as BaseCAM.forward with one target layer,
# ClassifierOutputTarget(target), no aug/eigen smoothing. `np_dtype` is float32 for the stored
# run (the library's np.float32 casts) and float64 for the float64 recomputation.

def pgc_scale_cam_image(cam, target_size, np_dtype):
    result = []
    for img in cam:
        img = img - np.min(img)
        img = img / (1e-7 + np.max(img))
        if target_size is not None:
            img = cv2.resize(np.asarray(img, dtype=np_dtype), target_size)
        result.append(img)
    return np.asarray(result, dtype=np_dtype)


def pgc_weights(method, activations, grads, model, input_tensor, target):
    if method == "gradcam":
        return np.mean(grads, axis=(2, 3))
    if method == "gradcampp":
        grads_power_2 = grads**2
        grads_power_3 = grads_power_2 * grads
        sum_activations = np.sum(activations, axis=(2, 3))
        eps = 0.000001
        aij = grads_power_2 / (2 * grads_power_2 + sum_activations[:, :, None, None] * grads_power_3 + eps)
        aij = np.where(grads != 0, aij, 0)
        weights = np.maximum(grads, 0) * aij
        return np.sum(weights, axis=(2, 3))
    if method == "xgradcam":
        sum_activations = np.sum(activations, axis=(2, 3))
        eps = 1e-7
        weights = grads * activations / (sum_activations[:, :, None, None] + eps)
        return weights.sum(axis=(2, 3))
    if method == "scorecam":
        with torch.no_grad():
            upsample = torch.nn.UpsamplingBilinear2d(size=input_tensor.shape[-2:])
            activation_tensor = torch.from_numpy(activations)
            upsampled = upsample(activation_tensor)
            maxs = upsampled.view(upsampled.size(0), upsampled.size(1), -1).max(dim=-1)[0]
            mins = upsampled.view(upsampled.size(0), upsampled.size(1), -1).min(dim=-1)[0]
            maxs, mins = maxs[:, :, None, None], mins[:, :, None, None]
            upsampled = (upsampled - mins) / (maxs - mins + 1e-8)
            input_tensors = input_tensor[:, None, :, :] * upsampled[:, :, None, :, :]
            batch_size = 16
            scores = []
            for t, tensor in zip(target.tolist(), input_tensors):
                for i in range(0, tensor.size(0), batch_size):
                    batch = tensor[i: i + batch_size, :]
                    scores.extend([o[t].cpu().item() for o in model(batch)])
            # torch.Tensor(scores) in the library: float32 (float64 in the float64 run).
            scores = torch.tensor(scores, dtype=input_tensor.dtype)
            scores = scores.view(activations.shape[0], activations.shape[1])
            return torch.nn.Softmax(dim=-1)(scores).numpy()
    raise KeyError(method)


def pgc_cam(method, activations, grads, model, input_tensor, target, np_dtype):
    """(returned map (B,1,H,W), relu(cam) (B,1,h,w), channel weights or None)."""
    if method == "layercam":
        weights = None
        cam = (np.maximum(grads, 0) * activations).sum(axis=1)
    else:
        weights = pgc_weights(method, activations, grads, model, input_tensor, target)
        cam = (weights[:, :, None, None] * activations).sum(axis=1)
    raw = np.maximum(cam, 0)
    size = (input_tensor.size(-1), input_tensor.size(-2))
    scaled = pgc_scale_cam_image(raw, size, np_dtype)
    per_layer = np.concatenate([scaled[:, None, :]], axis=1)
    per_layer = np.maximum(per_layer, 0)
    result = pgc_scale_cam_image(np.mean(per_layer, axis=1), None, np_dtype)
    return result[:, None], raw[:, None], weights


PGC_METHODS = [("gradcam", "GradCAM", True), ("gradcampp", "GradCAMPlusPlus", True),
               ("xgradcam", "XGradCAM", True), ("layercam", "LayerCAM", False), ("scorecam", "ScoreCAM", True)]


def cam_results(spec, state, x, target, dtype):
    model = load_model(state, spec["bn"], dtype)
    x = x.to(dtype)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    res = {}
    for layer, _ in spec["cam_layers"]:
        res.update(captum_gradcam(model, layer, x, target))
        # ActivationsAndGradients: forward hook on the layer's output, tensor hook for its gradient,
        # loss = sum_b logit[b, target_b], backward.
        with output_probes(model, [layer]) as (acts, grads):
            out = model(x)
            model.zero_grad()
            loss = sum([o[t] for t, o in zip(target.tolist(), out)])
            loss.backward(retain_graph=True)
        act, grad = acts[layer].detach(), grads[layer].detach()
        res[f"cam.act.{layer}"], res[f"cam.grad.{layer}"] = act, grad
        for key, _, _ in PGC_METHODS:
            m, raw, w = pgc_cam(key, act.numpy(), grad.numpy(), model, x, target, np_dtype)
            res[f"pgc.{key}.{layer}"] = torch.from_numpy(np.ascontiguousarray(m))
            res[f"pgc.{key}.{layer}.raw"] = torch.from_numpy(np.ascontiguousarray(raw))
            if w is not None:
                res[f"pgc.{key}.{layer}.weights"] = torch.from_numpy(np.ascontiguousarray(w))
    return res


def cam_entries(spec):
    entries = []
    for layer, words in spec["cam_layers"]:
        entries += [
            Entry(f"gradcam.{layer}", f"Captum LayerGradCam(relu_attributions=True) at {layer} ({words}), layer resolution"),
            Entry(f"gradcam.{layer}.up28",
                  f"gradcam.{layer} resized by F.interpolate(bilinear, align_corners=False), not normalised")]
        for key, cls, has_weights in PGC_METHODS:
            at = f"pytorch-grad-cam {cls} at {layer} ({words})"
            entries += [
                Entry(f"pgc.{key}.{layer}", f"{at}: returned 28x28 map (library shape (B,H,W), stored (B,1,H,W))"),
                Entry(f"pgc.{key}.{layer}.raw", f"{at}: relu(cam) before scaling")]
            if has_weights:
                entries.append(Entry(f"pgc.{key}.{layer}.weights",
                                     f"pytorch-grad-cam {cls} channel weights at {layer} ({words})"))
            if key == "gradcam":
                entries += [
                    Entry(f"cam.act.{layer}", f"activation seen by the forward hook: output of {layer} ({words})"),
                    Entry(f"cam.grad.{layer}", f"gradient of sum_b logit[b,target_b] wrt the output of {layer} ({words})")]
    return entries


# ---- the four files of a model ----

def model_files(key, seed_dir):
    spec = MODELS[key]
    state, _ = read_safetensors(os.path.join(seed_dir, f"{key}.model.safetensors"))
    seed, _ = read_safetensors(os.path.join(seed_dir, f"{key}.data.safetensors"))
    x, label = seed["input"], seed["label"]
    with torch.no_grad():
        target = choose_targets(load_model(state, spec["bn"], torch.float32)(x))
    meta = [("model", spec["name"])]
    probes = [spec["first_pool"], spec["last_conv"], spec["last_pool"]]

    def data(dtype):
        model = load_model(state, spec["bn"], dtype)
        with torch.no_grad(), output_probes(model, probes) as (acts, _):
            res = {"logits": model(x.to(dtype))}
        res.update({f"act.{p}": acts[p] for p in probes})
        return res

    files = [RefFile(f"{key}.model.safetensors", spec["model_description"], meta,
                     [Entry(k, None, v) for k, v in state.items()], None)]
    files.append(RefFile(
        f"{key}.data.safetensors", "inputs, targets, logits and forward activations", meta,
        [Entry("input", "model input batch (NCHW)", x),
         Entry("target", "target class per sample (I64)", target),
         Entry("label", "true synthetic class per sample", label),
         Entry("logits", "model output (eval mode)"),
         Entry(f"act.{spec['first_pool']}", f"forward activation: output of {spec['first_pool']} (first MaxPool2d)"),
         Entry(f"act.{spec['last_conv']}", f"forward activation: output of {spec['last_conv']} ({spec['conv_note']})"),
         Entry(f"act.{spec['last_pool']}", f"forward activation: output of {spec['last_pool']} (last MaxPool2d)")],
        data))

    grad_entries = [
        Entry("grad", "Captum Saliency(abs=False): d logit[target] / d input"),
        Entry("saliency", "Captum Saliency(abs=True): |d logit[target] / d input|"),
        Entry("input_x_gradient", "Captum InputXGradient: input * gradient"),
        Entry("ig.gausslegendre.n50", "Captum IntegratedGradients, baseline 0, n_steps=50, method=gausslegendre", tol99=True),
        Entry("ig.riemann_trapezoid.n32", "Captum IntegratedGradients, baseline 0, n_steps=32, method=riemann_trapezoid",
              tol99=True),
        Entry("deeplift", "Captum DeepLift (rescale, multiply_by_inputs=True), baseline 0"),
        Entry("guided_backprop", "Captum GuidedBackprop")]
    if spec["gradcam_in_gradient"]:
        layer, words = spec["gradcam_in_gradient"]
        grad_entries += [
            Entry(f"gradcam.{layer}", f"Captum LayerGradCam(relu_attributions=True) at {layer} ({words}), layer resolution"),
            Entry(f"gradcam.{layer}.up28",
                  f"gradcam.{layer} resized by F.interpolate(bilinear, align_corners=False), not normalised")]
    files.append(RefFile(f"{key}.gradient.safetensors", spec["gradient_description"], meta, grad_entries,
                         lambda dtype: captum_gradient_results(spec, state, x, target, dtype)))

    lrp_entries = []
    for comp in spec["composites"]:
        base, _, start = comp.partition(".")
        words = composite_words(base, spec["bn"])
        out_words = "one-hot(target) * logit" if start == "onehot_logit" else "one-hot(target)"
        lrp_entries.append(Entry(f"lrp.{comp}", f"{words}; output relevance {out_words}; relevance at the input"))
        for p in (spec["first_pool"], spec["last_pool"]):
            lrp_entries.append(Entry(f"lrp.{comp}.layer_out.{p}",
                                     f"{words}; output relevance {out_words}; relevance at the output of {p}"))
    fold = (lambda: lrp_results(spec, state, x, target, torch.float32, fold_exact=True)) if spec["bn"] else None
    files.append(RefFile(f"{key}.lrp.safetensors", spec["lrp_description"], meta, lrp_entries,
                         lambda dtype: lrp_results(spec, state, x, target, dtype), exact_fold=fold))

    if spec["cam_layers"]:
        files.append(RefFile(f"{key}.cam.safetensors", "vgg-mini: CAM family", meta, cam_entries(spec),
                             lambda dtype: cam_results(spec, state, x, target, dtype)))
    return files


def all_files(seed_dir):
    files = [rule_file(k) for k in RULE_CASES]
    for key in MODELS:
        files += model_files(key, seed_dir)
    return files


# ----------------------------------------------------------------------------------------------
# --check: compare a regenerated folder with the stored one.

def compare(new_path, old_path):
    """Returns (identical, tensors_within_tolerance, lines)."""
    with open(new_path, "rb") as f:
        new_raw = f.read()
    with open(old_path, "rb") as f:
        old_raw = f.read()
    if new_raw == old_raw:
        return True, True, []
    new, new_meta = read_safetensors(new_path)
    old, old_meta = read_safetensors(old_path)
    lines, ok = [], list(new) == list(old)
    if not ok:
        lines.append(f"tensor names/order differ: regenerated {list(new)} vs stored {list(old)}")
    for name, ref in old.items():
        got = new.get(name)
        if got is None:
            continue
        if got.dtype != ref.dtype or got.shape != ref.shape:
            ok = False
            lines.append(f"{name}: {got.dtype}{list(got.shape)} vs stored {ref.dtype}{list(ref.shape)}")
            continue
        if torch.equal(got, ref):
            continue
        tol = float(old_meta.get("tol." + name, "0") or 0)
        dev = rel_max(got, ref)
        nbits = int((got != ref).sum())
        verdict = f"{dev / tol:.3f} of tol {fmt_tol(tol)}" if tol else "NOT EXACT (seed/exact data)"
        ok = ok and tol > 0 and dev <= tol
        lines.append(f"{name}: {nbits}/{ref.numel()} elements differ, max per-sample rel dev {dev:.2e} = {verdict}")
    for k in list(old_meta) + [k for k in new_meta if k not in old_meta]:
        if old_meta.get(k) != new_meta.get(k):
            lines.append(f"metadata {k}: regenerated {new_meta.get(k)!r} vs stored {old_meta.get(k)!r}")
    if list(new_meta) != list(old_meta) and set(new_meta) == set(old_meta):
        lines.append("metadata key order differs")
    return False, ok, lines


def check_versions():
    import captum
    from importlib.metadata import version
    found = {"torch": torch.__version__, "numpy": np.__version__, "cv2": cv2.__version__,
             "zennit": version("zennit"), "captum": captum.__version__}
    bad = {k: v for k, v in found.items() if v != PINS[k]}
    return bad


def use_cooperlake_sgemm_blocking():
    """Make OpenBLAS block SGEMM as on the machine that made the stored files; returns what it did.

    The bits of a GEMM with a long K (vgg-mini's classifier.0: K = 3136) depend on how OpenBLAS
    slices K (C += A[:, slice] B[slice, :] per slice). The stored files were made where OpenBLAS
    0.3.21 chose its Cooperlake tables (AVX-512 + BF16 CPUs: SGEMM P = 640, Q = 320); its SkylakeX
    tables have the same kernels with P = Q = 448. 0.3.21 cannot be told to use Cooperlake
    (OPENBLAS_CORETYPE stops one entry short of it), so scripts/references.sh forces SkylakeX on
    AVX-512 CPUs and this sets the active table's sgemm_p/q (and sgemm_r, from the same buffer
    budget) to Cooperlake's. Layout of the table's first ints (common_param.h, no BFLOAT16 build):
    dtb_entries, offsetA, offsetB, align, sgemm_p, sgemm_q, sgemm_r, sgemm_unroll_m, _n, _mn."""
    import ctypes
    with open("/proc/self/maps") as f:
        libs = sorted({line.split()[-1] for line in f if "blas" in line.split()[-1].rsplit("/", 1)[-1]})
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
            get = lib.openblas_get_corename
        except (OSError, AttributeError):
            continue
        get.restype = ctypes.c_char_p
        core = get().decode()
        if core == "Cooperlake":
            return f"OpenBLAS ({path}), core Cooperlake: as the stored files"
        if core != "SkylakeX":
            return f"OpenBLAS ({path}), core {core}: Linear-layer bits will differ from the stored files"
        table = (ctypes.c_int * 10).from_address(ctypes.c_void_p.in_dll(lib, "gotoblas").value)
        if list(table[4:6]) + list(table[7:10]) != [448, 448, 16, 4, 32]:
            return f"OpenBLAS ({path}), core SkylakeX with an unexpected table {list(table)}: left alone"
        budget = (table[6] + 15) * table[5] * 4
        table[4], table[5] = 640, 320
        table[6] = (budget // (320 * 4) - 15) & ~15
        return f"OpenBLAS ({path}), core SkylakeX with Cooperlake's SGEMM blocking (P 640, Q 320): as the stored files"
    return "not OpenBLAS (" + ", ".join(libs) + "): Linear-layer bits will differ from the stored files"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="regenerate into a temp folder and compare with --data")
    ap.add_argument("--data", default=DATA, help="the reference folder (default: tests/data)")
    ap.add_argument("--seed-dir", default=None, help="where the frozen seed data is read (default: --data)")
    ap.add_argument("--out", default=None, help="write here instead of --data (default: --data; with --check: temp)")
    ap.add_argument("--only", default=None, help="comma-separated file names (e.g. rules_linear.safetensors)")
    args = ap.parse_args()

    bad = check_versions()
    if bad:
        msg = ", ".join(f"{k} {v} (pinned {PINS[k]})" for k, v in bad.items())
        if not args.check:
            sys.exit(f"make_references: refusing to write references with {msg}; run scripts/references.sh")
        print(f"make_references: warning: {msg}; values and metadata may differ", file=sys.stderr)

    torch.set_num_threads(1)
    # Captum announces that it sets requires_grad and hooks on the ReLUs: expected here.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\.")
    torch.ones(2, 2) @ torch.ones(2, 2)  # loads the BLAS
    print(f"torch {torch.__version__}, BLAS: {use_cooperlake_sgemm_blocking()}", flush=True)
    seed_dir = args.seed_dir or args.data
    only = set(args.only.split(",")) if args.only else None
    tmp = tempfile.mkdtemp(prefix="gb-references-") if args.check and not args.out else None
    out = args.out or tmp or args.data
    os.makedirs(out, exist_ok=True)
    try:
        # Build everything before writing anything: the seed data is read from the folder that
        # may be overwritten.
        built = []
        for rf in all_files(seed_dir):
            if only and rf.filename not in only:
                continue
            tensors, meta = rf.build()
            built.append((rf.filename, tensors, meta))
            print(f"built {rf.filename} ({len(tensors)} tensors)", flush=True)
        for name, tensors, meta in built:
            write_safetensors(os.path.join(out, name), tensors, meta)
        if not args.check:
            print(f"wrote {len(built)} files to {out}")
            return 0
        n_same, n_tol, n_bad = 0, 0, 0
        for name, _, _ in built:
            same, ok, lines = compare(os.path.join(out, name), os.path.join(args.data, name))
            if same:
                n_same += 1
                print(f"IDENTICAL  {name}")
                continue
            n_tol += ok
            n_bad += not ok
            print(f"{'WITHIN-TOL' if ok else 'DIFFERENT '} {name}")
            for l in lines:
                print("    " + l)
        print(f"check: {n_same} byte-identical, {n_tol} within tolerance (not identical), {n_bad} different "
              f"(of {len(built)})")
        return 0 if n_bad == 0 else 1
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
