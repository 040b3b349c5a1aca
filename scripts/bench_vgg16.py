#!/usr/bin/env python3
"""VGG-16 at 224x224, batch 1: glassbox (build/bench/bench_models, cases
vgg16_224/*) against PyTorch (Debian's python3-torch and python3-torchvision,
CPU) and, for LRP, Zennit 0.5.1, interleaved in rounds on this machine. Prints
the CPU model and a table of median times, peak resident memory of each
process and the ratios glassbox / reference; below 1 means glassbox is faster.

Cases (torchvision's layout, random weights, 1000 classes, an input of
ImageNet-normalised values, target = the predicted class):
  inference (no gradient), saliency (the input gradient, then max over
  channels of |g|), Grad-CAM at the last conv's ReLU (features.29), each on
  VGG-16; saliency and LRP EpsilonGammaBox with the BatchNorm canonizer
  (Zennit: SequentialMergeBatchNorm; ZBox bounds of [0, 1] pixels after the
  normalisation) on VGG-16-BN. Every case includes its forward pass.
Each reference case runs in its own process (for its peak RSS) on 2 threads
and on 1, and counts the faster (PyTorch is often slower on 2 at batch 1).

Usage: a Python with torch, torchvision and zennit 0.5.1 (scripts/setup.sh's
test environment has them):
  build/pyenv/bin/python scripts/bench_vgg16.py [--rounds 3] [--bench build/bench/bench_models]
"""
import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def timed(fn, min_time=2.0, min_runs=3):
    fn()  # warm-up
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < min_time or len(times) < min_runs:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def worker(kind, model_name, threads):
    """One reference case in this process; prints {"ms": ..., "peak_mb": ...}."""
    import torch
    import torchvision

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = getattr(torchvision.models, model_name)().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    x = torch.rand(1, 3, 224, 224) * 4 - 2

    def one_hot(out):
        return torch.zeros_like(out).scatter_(1, out.argmax(1, keepdim=True), 1.0)

    if kind == "inference":
        def run():
            with torch.no_grad():
                net(x)
    elif kind == "saliency":
        def run():
            xi = x.clone().requires_grad_(True)
            out = net(xi)
            (g,) = torch.autograd.grad(out, xi, one_hot(out))
            g.abs().amax(1, keepdim=True)
    elif kind == "gradcam":
        layer = net.features[29]

        def run():
            acts = {}
            h = layer.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
            out = net(x.clone().requires_grad_(True))
            h.remove()
            (g,) = torch.autograd.grad(out, acts["a"], one_hot(out))
            m = torch.relu((g.mean((2, 3), keepdim=True) * acts["a"]).sum(1, keepdim=True))
            torch.nn.functional.interpolate(m, size=(224, 224), mode="bilinear", align_corners=False)
    elif kind == "lrp":
        from zennit.attribution import Gradient
        from zennit.canonizers import SequentialMergeBatchNorm
        from zennit.composites import EpsilonGammaBox

        mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        std = torch.tensor(STD).view(1, 3, 1, 1)
        low = ((0 - mean) / std).expand(1, 3, 224, 224)
        high = ((1 - mean) / std).expand(1, 3, 224, 224)
        composite = EpsilonGammaBox(low=low, high=high, canonizers=[SequentialMergeBatchNorm()])

        def run():
            with Gradient(model=net, composite=composite) as attributor:
                out, relevance = attributor(x, lambda o: one_hot(o))
    else:
        raise ValueError(kind)
    ms = timed(run)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"ms": ms, "peak_mb": peak_mb}))


def reference_case(kind, model_name, threads):
    best = None
    for n in threads:
        out = subprocess.run([sys.executable, __file__, "--worker", kind, model_name, str(n)], check=True,
                             capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        if best is None or r["ms"] < best["ms"]:
            best = r
    return best


def glassbox_case(bench, name):
    out = subprocess.run([bench, "--benchmark_filter=^" + name + "$", "--benchmark_format=json",
                          "--benchmark_min_time=2"], check=True, capture_output=True, text=True)
    runs = [b for b in json.loads(out.stdout)["benchmarks"] if b["name"] == name]
    if not runs:
        sys.exit(f"benchmark {name} not found in {bench}")
    return {"ms": runs[0]["real_time"], "peak_mb": runs[0]["peak_MB"]}


# (label, glassbox benchmark, reference kind, torchvision model, reference name)
CASES = [
    ("VGG-16 inference", "vgg16_224/inference/2/real_time", "inference", "vgg16", "PyTorch"),
    ("VGG-16 saliency", "vgg16_224/saliency/2/real_time", "saliency", "vgg16", "PyTorch"),
    ("VGG-16 Grad-CAM (features.29)", "vgg16_224/gradcam/2/real_time", "gradcam", "vgg16", "PyTorch"),
    ("VGG-16-BN saliency", "vgg16_224/bn_saliency/2/real_time", "saliency", "vgg16_bn", "PyTorch"),
    ("VGG-16-BN LRP EpsilonGammaBox + BatchNorm canonizer", "vgg16_224/bn_lrp_epsilon_gamma_box/2/real_time", "lrp",
     "vgg16_bn", "Zennit 0.5.1"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bench", default="build/bench/bench_models")
    ap.add_argument("--only", default="", help="run only the cases whose label contains this text")
    ap.add_argument("--worker", nargs=3, metavar=("KIND", "MODEL", "THREADS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], int(args.worker[2]))
        return
    import torch

    cases = [c for c in CASES if args.only in c[0]]
    if not cases:
        sys.exit(f"no case label contains {args.only!r}")
    results = {c[0]: ([], []) for c in cases}
    for r in range(args.rounds):
        for label, gname, kind, model, ref in cases:
            g = glassbox_case(args.bench, gname)
            t = reference_case(kind, model, (2, 1))
            results[label][0].append(g)
            results[label][1].append(t)
            print(f"round {r + 1}: {label}: glassbox {g['ms']:.0f} ms, {ref} {t['ms']:.0f} ms", file=sys.stderr)

    def med(runs, key):
        return statistics.median(x[key] for x in runs)

    print(f"{cpu_model()}, glassbox on 2 threads, references on the faster of 2 and 1 threads; "
          f"PyTorch {torch.__version__}; {args.rounds} interleaved rounds, medians\n")
    print("| case (batch 1, 224x224) | glassbox ms | reference | reference ms | ratio | glassbox peak MB | reference peak MB |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for label, _, _, _, ref in cases:
        g, t = results[label]
        print(f"| {label} | {med(g, 'ms'):.0f} | {ref} | {med(t, 'ms'):.0f} | {med(g, 'ms') / med(t, 'ms'):.2f} | "
              f"{med(g, 'peak_mb'):.0f} | {med(t, 'peak_mb'):.0f} |")
    lrp = "VGG-16-BN LRP EpsilonGammaBox + BatchNorm canonizer"
    sal = "VGG-16-BN saliency"
    if lrp in results and sal in results:
        ratio = med(results[lrp][0], "ms") / med(results[sal][0], "ms")
        print(f"\nwithin glassbox, VGG-16-BN: LRP / saliency = {ratio:.2f}")


if __name__ == "__main__":
    main()
