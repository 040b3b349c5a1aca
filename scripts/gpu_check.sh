#!/usr/bin/env bash
# On a machine with a GPU: build the CUDA backend for that GPU, run the real-GPU
# comparison suite (test_cuda_device, every algorithm against the CPU backend)
# and the CUDA benchmarks. Usage: scripts/gpu_check.sh [build-dir]
# Environment: GB_JOBS (parallel build jobs), GB_BENCH_FILTER (a --benchmark_filter regex).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build-gpu}"
nvcc="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGB_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc" \
      -DCMAKE_CUDA_ARCHITECTURES=native -DGB_BUILD_TESTS=ON -DGB_BUILD_BENCH=ON
cmake --build "$build" -j "${GB_JOBS:-$(nproc)}" --target test_cuda_device bench_cuda
"$build/tests/test_cuda_device"
"$build/bench/bench_cuda" --benchmark_min_time=0.1 --benchmark_filter="${GB_BENCH_FILTER:-.}"
