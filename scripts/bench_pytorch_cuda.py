#!/usr/bin/python3
"""PyTorch on the GPU, FP32 without TF32 (glassbox's cuBLAS/cuDNN settings): the vgg-mini
training step at batch 128 (the model of bench_pytorch.py, a synthetic batch already on the
GPU) and the convolutions of bench_cuda. Run by scripts/gpu_run.sh; numbers in docs/cuda.md."""
import time

import torch
import torch.nn as nn

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = False
dev = torch.device("cuda")


def timeit(fn, n=50):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / n


print("torch", torch.__version__, "cudnn", torch.backends.cudnn.version(), torch.cuda.get_device_name())
net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                    nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1),
                    nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Dropout(0.5),
                    nn.Linear(256, 10)).to(dev)
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
x = torch.rand(128, 1, 28, 28, device=dev)
y = torch.arange(128, device=dev) % 10


def step():
    opt.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(net(x), y).backward()
    opt.step()


t = timeit(step)
print(f"vgg-mini train step b128: {t * 1e3:.3f} ms = {128 / t:.0f} img/s")
for n, c, h, k in [(64, 3, 32, 64), (64, 64, 32, 64), (64, 128, 16, 128), (64, 256, 8, 256)]:
    xi = torch.rand(n, c, h, h, device=dev, requires_grad=True)
    w = torch.rand(k, c, 3, 3, device=dev, requires_grad=True)

    def forward():
        return torch.nn.functional.conv2d(xi, w, padding=1)

    g = torch.rand_like(forward())
    tf = timeit(forward)
    tb = timeit(lambda: torch.autograd.grad(forward(), (xi, w), g)) - tf
    flops = 2 * n * k * h * h * c * 9
    print(f"conv N{n} C{c} {h}x{h} K{k}: forward {tf * 1e6:.1f} us ({flops / tf / 1e9:.0f} GFLOP/s), "
          f"both backwards {tb * 1e6:.1f} us")
