#!/usr/bin/python3
"""Runs glassbox's end-to-end benchmarks (build/bench/bench_models) and the same
cases in PyTorch (Debian's python3-torch, CPU), interleaved in rounds on this
machine, and prints the CPU model and the ratio table glassbox / PyTorch (time
per batch; below 1 means glassbox is faster) with each case's peak resident
memory in both (every case runs in a process of its own on both sides).
Usage: a Python with torch (Debian's python3-torch), and zennit 0.5.1 for the
LRP row (scripts/setup.sh's build/pyenv has both; without Zennit that row is
left out with a note):
build/pyenv/bin/python scripts/bench_pytorch.py [--rounds 3] [--bench build/bench/bench_models] [--only "inference b1"]

Cases (batch, threads): vgg-mini training step (128, 2), VGG-11 training step
(64, 2), inference (1, 2), (1, 1), (64, 2), saliency (64, 2), Grad-CAM (64, 2),
LRP epsilon-plus-flat (64, 2) against Zennit's EpsilonPlusFlat, and the
vgg-mini training step again beside a spinning neighbour (a thread in
glassbox's process, a process beside PyTorch's), with both frameworks'
contended / quiet throughput.
PyTorch's thread count is set explicitly per case (it defaults to 1 here). At
batch 1 on 2 threads PyTorch is slower than on 1, so the 2-thread batch-1 cases
time PyTorch on both and compare with its faster.
"""
import argparse
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn

from bench_vgg16 import cpu_model  # scripts/ is on the path of a script run from it


def vgg(cfg, in_ch, size, hidden):
    layers, ch = [], in_ch
    for v in cfg:
        if v == "M":
            if size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            continue
        layers += [nn.Conv2d(ch, v, 3, padding=1), nn.ReLU()]
        ch = v
    cls, n = [], ch * size * size
    for h in hidden:
        cls += [nn.Linear(n, h), nn.ReLU(), nn.Dropout(0.5)]
        n = h
    cls.append(nn.Linear(n, 10))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(*cls)

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    return Net()


MODELS = {
    "vgg_mini": lambda: (vgg([32, 32, "M", 64, 64, "M"], 1, 28, [256]), (1, 28)),
    "vgg11": lambda: (vgg([64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"], 3, 32, [512, 512]), (3, 32)),
}


def timed(fn, min_time=1.0):
    fn()  # warm-up
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < min_time or len(times) < 3:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def torch_case(kind, model_name, batch, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net, (ch, size) = MODELS[model_name]()
    x = torch.rand(batch, ch, size, size)
    y = torch.arange(batch) % 10
    if kind == "train_step":
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

        def step():
            loss = nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return timed(step)
    net.eval()
    if kind == "inference":
        def infer():
            with torch.no_grad():
                net(x)
        return timed(infer)
    for p in net.parameters():
        p.requires_grad_(False)
    if kind == "saliency":
        def sal():
            xi = x.clone().requires_grad_(True)
            out = net(xi)
            seed = torch.zeros_like(out).scatter_(1, out.argmax(1, keepdim=True), 1.0)
            (g,) = torch.autograd.grad(out, xi, seed)
            g.abs().amax(1, keepdim=True)
        return timed(sal)
    if kind == "gradcam":
        layer = net.features[8]  # the ReLU after the last conv of vgg-mini

        def cam():
            acts = {}
            h = layer.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
            out = net(x.clone().requires_grad_(True))
            h.remove()
            seed = torch.zeros_like(out).scatter_(1, out.argmax(1, keepdim=True), 1.0)
            (g,) = torch.autograd.grad(out, acts["a"], seed)
            m = torch.relu((g.mean((2, 3), keepdim=True) * acts["a"]).sum(1, keepdim=True))
            nn.functional.interpolate(m, size=(28, 28), mode="bilinear", align_corners=False)
        return timed(cam)
    if kind == "lrp":
        from zennit.composites import EpsilonPlusFlat
        from zennit.attribution import Gradient

        composite = EpsilonPlusFlat()

        def lrp():
            with Gradient(model=net, composite=composite) as attributor:
                attributor(x, lambda out: torch.zeros_like(out).scatter_(1, out.argmax(1, keepdim=True), 1.0))
        return timed(lrp)
    raise ValueError(kind)


def worker(kind, model_name, batch, threads):
    """One PyTorch case in this process; prints {"ms": ..., "peak_mb": ...}."""
    ms = torch_case(kind, model_name, batch, threads)
    print(json.dumps({"ms": ms, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))


def reference_case(kind, model_name, batch, threads):
    """The faster of the thread counts, each in a process of its own."""
    best = None
    for n in threads:
        out = subprocess.run([sys.executable, __file__, "--worker", kind, model_name, str(batch), str(n)], check=True,
                             capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        if best is None or r["ms"] < best["ms"]:
            best = r
    return best


CONTENDED = "vgg-mini training step b128, 2 threads, a spinning neighbour"
LRP = "vgg-mini LRP epsilon-plus-flat b64, 2 threads (reference: Zennit 0.5.1 EpsilonPlusFlat)"

# (label, glassbox benchmark name, torch kind, model, batch, PyTorch thread
# counts: its time is the fastest of them)
CASES = [
    ("vgg-mini training step b128, 2 threads", "train_step/vgg_mini/128/2/real_time", "train_step", "vgg_mini", 128, (2,)),
    ("VGG-11 training step b64, 2 threads", "train_step/vgg11/64/2/real_time", "train_step", "vgg11", 64, (2,)),
    ("vgg-mini inference b1, 2 threads (PyTorch: faster of 1 and 2)", "inference/vgg_mini/1/2/real_time", "inference",
     "vgg_mini", 1, (1, 2)),
    ("vgg-mini inference b1, 1 thread", "inference/vgg_mini/1/1/real_time", "inference", "vgg_mini", 1, (1,)),
    ("vgg-mini inference b64, 2 threads", "inference/vgg_mini/64/2/real_time", "inference", "vgg_mini", 64, (2,)),
    ("VGG-11 inference b1, 2 threads (PyTorch: faster of 1 and 2)", "inference/vgg11/1/2/real_time", "inference",
     "vgg11", 1, (1, 2)),
    ("VGG-11 inference b1, 1 thread", "inference/vgg11/1/1/real_time", "inference", "vgg11", 1, (1,)),
    ("vgg-mini saliency b64, 2 threads", "explanation/saliency/64/2/real_time", "saliency", "vgg_mini", 64, (2,)),
    ("vgg-mini Grad-CAM b64, 2 threads", "explanation/gradcam/64/2/real_time", "gradcam", "vgg_mini", 64, (2,)),
    (LRP, "explanation/lrp_epsilon_plus_flat/64/2/real_time", "lrp", "vgg_mini", 64, (2,)),
    # glassbox's case runs a spinning thread beside itself; PyTorch gets a spinning process
    # (a Python thread would fight for the GIL rather than for the core).
    (CONTENDED, "train_step_contended/vgg_mini/128/2/real_time", "train_step", "vgg_mini", 128, (2,)),
]


class SpinningNeighbour:
    """A process that spins on one core while the with-block runs."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.2)
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def glassbox_case(bench, name):
    out = subprocess.run([bench, "--benchmark_filter=^" + name.replace("/real_time", "") + "/real_time$",
                          "--benchmark_format=json", "--benchmark_min_time=1"], check=True, capture_output=True, text=True)
    runs = [b for b in json.loads(out.stdout)["benchmarks"] if b["name"] == name]
    if not runs:
        sys.exit(f"benchmark {name} not found in {bench}")
    return {"ms": runs[0]["real_time"], "peak_mb": runs[0]["peak_MB"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bench", default="build/bench/bench_models")
    ap.add_argument("--only", default="", help="run only the cases whose label contains this text")
    ap.add_argument("--worker", nargs=4, metavar=("KIND", "MODEL", "BATCH", "THREADS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], int(args.worker[2]), int(args.worker[3]))
        return
    cases = [c for c in CASES if args.only in c[0]]
    if any(c[0] == LRP for c in cases) and importlib.util.find_spec("zennit") is None:
        print(f"note: zennit is not importable by {sys.executable}; the LRP row is left out", file=sys.stderr)
        cases = [c for c in cases if c[0] != LRP]
    if not cases:
        sys.exit(f"no case label contains {args.only!r}")
    results = {c[0]: ([], []) for c in cases}
    for r in range(args.rounds):
        for label, gname, kind, model, batch, threads in cases:
            g = glassbox_case(args.bench, gname)
            if label == CONTENDED:
                with SpinningNeighbour():
                    t = reference_case(kind, model, batch, threads)
            else:
                t = reference_case(kind, model, batch, threads)
            results[label][0].append(g)
            results[label][1].append(t)
            print(f"round {r + 1}: {label}: glassbox {g['ms']:.2f} ms, PyTorch {t['ms']:.2f} ms", file=sys.stderr)

    def med(runs, key="ms"):
        return statistics.median(x[key] for x in runs)

    print(f"{cpu_model()}; PyTorch {torch.__version__}; {args.rounds} interleaved rounds, medians\n")
    print("| case | glassbox ms | PyTorch ms | ratio | glassbox peak MB | PyTorch peak MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, *_ in cases:
        g, t = results[label]
        print(f"| {label} | {med(g):.2f} | {med(t):.2f} | {med(g) / med(t):.2f} | {med(g, 'peak_mb'):.0f} | "
              f"{med(t, 'peak_mb'):.0f} |")
    quiet = "vgg-mini training step b128, 2 threads"
    if CONTENDED in results and quiet in results:
        gq, tq = (med(v) for v in results[quiet])
        gc, tc = (med(v) for v in results[CONTENDED])
        print(f"\nThroughput with a spinning neighbour / quiet (vgg-mini training step b128, 2 threads): "
              f"glassbox {gq / gc:.2f}, PyTorch {tq / tc:.2f}")


if __name__ == "__main__":
    main()
