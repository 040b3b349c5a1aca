#!/usr/bin/env bash
# Runs what scripts/gpu_pack.sh packed, on the GPU machine, in about a minute:
# test_cuda_device, test_parallel, bench_cuda (GB_BENCH_FILTER narrows it), one epoch of
# vgg-mini on Fashion-MNIST per convolution algorithm, explain's maps on cuda
# against the CPU's, and PyTorch on the same GPU (scripts/bench_pytorch_cuda.py,
# when python3 imports torch). Logs and bench_cuda.json go to $OUT (or ./gpu-out).
# Usage: scripts/gpu_run.sh [packed folder, default gpucarry]
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pack="$(cd "${1:-$root/gpucarry}" && pwd)"
out="${OUT:-$root/gpu-out}"
mkdir -p "$out"
cd "$pack"
t0=$(date +%s)
stage() { echo; echo "=== $1 (t=$(( $(date +%s) - t0 )) s)"; }
# CUDA's libraries wherever this machine keeps them (toolkit or Python wheels).
libdirs=$(find /usr/local /opt /usr/lib -maxdepth 9 \( -name 'libcublas.so.*' -o -name 'libcudnn.so.*' \
          -o -name 'libcudart.so.*' -o -name 'libcublasLt.so.*' \) 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="$pack/lib:${libdirs}${LD_LIBRARY_PATH:-}"
stage machine
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
lscpu | grep -E "Model name|^CPU\(s\)"
ldd bin/test_cuda_device | grep -E "not found|cublas|cudnn|cudart"
stage test_cuda_device
timeout 240 bin/test_cuda_device 2>&1 | tee "$out/test_cuda_device.log" | tail -40
echo "rc=${PIPESTATUS[0]}"
stage "test_parallel on $(nproc) cores"
timeout 60 bin/test_parallel 2>&1 | tail -3
echo "rc=${PIPESTATUS[0]}"
stage bench_cuda
timeout 150 bin/bench_cuda --benchmark_min_time=0.1 --benchmark_filter="${GB_BENCH_FILTER:-.}" \
    --benchmark_out="$out/bench_cuda.json" --benchmark_out_format=json 2>&1 | tee "$out/bench_cuda.txt"
echo "rc=${PIPESTATUS[0]}"
export GB_DATA_DIR="$pack/data"
run="$(mktemp -d)"
stage "train vgg-mini on cuda, 1 epoch per convolution algorithm"
for algo in cudnn im2col implicit; do
    echo "-- GB_CUDA_CONV=$algo"
    GB_CUDA_CONV=$algo timeout 100 bin/glassbox train --model vgg-mini --data fashion-mnist --epochs 1 \
        --batch-size 128 --device cuda --out "$run/train-$algo" 2>&1 | tr '\r' '\n' | grep "^epoch 1:"
done
stage "explain on cuda and on the cpu: the maps compared"
for d in cuda cpu; do
    timeout 60 bin/glassbox explain --checkpoint "$run/train-cudnn/model.safetensors" --data fashion-mnist \
        --index 0 1 2 --method lrp:epsilon-plus-flat --method gradcam --method saliency --target pred \
        --device $d --out "$run/explain-$d" 2>&1 | tail -1
done
python3 - "$run" <<'PY'
import glob, os, sys
import numpy as np
run = sys.argv[1]
worst = 0.0
for f in sorted(glob.glob(f"{run}/explain-cuda/*.npy")):
    a, b = np.load(f), np.load(f.replace("explain-cuda", "explain-cpu"))
    d = float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))
    worst = max(worst, d)
    print(f"{os.path.basename(f):32s} max|cuda - cpu| / max|cpu| = {d:.2e}")
print(f"worst {worst:.2e}")
PY
stage "PyTorch on this GPU"
timeout 120 python3 "$root/scripts/bench_pytorch_cuda.py" 2>&1
stage done
