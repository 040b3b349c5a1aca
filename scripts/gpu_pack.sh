#!/usr/bin/env bash
# For a GPU machine that has the CUDA runtime, cuBLAS and cuDNN but not glassbox's
# build dependencies (the device machines lent to this project: no Debian packages,
# no network): build the CUDA programs here, portable (GB_NATIVE=OFF) and for the
# given architectures, and pack them with the few shared libraries they need
# beyond CUDA's and the Fashion-MNIST files into one folder, gpucarry/ (ignored by
# git). On the GPU machine, `bash scripts/gpu_run.sh gpucarry` then runs
# test_cuda_device, test_parallel (the CPU thread pool on that machine's cores),
# bench_cuda, a one-epoch training per convolution algorithm, the CPU-vs-GPU
# comparison of explain's maps and PyTorch on the same GPU.
# Usage: scripts/gpu_pack.sh [architectures, default 90] (nvcc must match the
# GPU machine's CUDA major version: the programs link libcudart/libcublas.so.<major>).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
arch="${1:-90}"
build="$root/build-gpu" out="$root/gpucarry"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGB_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" \
      -DGB_NATIVE=OFF -DGB_BUILD_TESTS=ON -DGB_BUILD_BENCH=ON -DGB_PYTHON=OFF
cmake --build "$build" -j "${GB_JOBS:-$(nproc)}" --target test_cuda_device test_parallel bench_cuda glassbox_cli
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/data/fashion-mnist"
cp "$build/tests/test_cuda_device" "$build/tests/test_parallel" "$build/bench/bench_cuda" "$build/glassbox" "$out/bin/"
strip "$out"/bin/*
# Every shared library the programs need that is neither CUDA's nor the C/C++ runtime's.
ldd "$out"/bin/* | awk '$3 ~ /^\// {print $3}' | sort -u |
    grep -Ev '/lib(c|m|dl|rt|pthread|gcc_s|stdc\+\+)\.so|libcu(da|dart|blas|blasLt|dnn)' |
    xargs -r -I{} cp -L {} "$out/lib/"
cp /usr/share/datasets/fashion-mnist/*.gz "$out/data/fashion-mnist/"
du -sh "$out"
