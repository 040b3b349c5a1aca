#!/usr/bin/env bash
# The main job from nothing: set up (packages + build), train vgg-mini on
# Fashion-MNIST (a short run), then evaluate the checkpoint on the test split.
# Environment: GB_EPOCHS (default 1), GB_OUT (default runs/vgg-mini).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" "$root/build"
out="${GB_OUT:-$root/runs/vgg-mini}"
"$root/build/glassbox" info
"$root/build/glassbox" train --model vgg-mini --data fashion-mnist --epochs "${GB_EPOCHS:-1}" \
    --batch-size 128 --lr 0.05 --schedule cosine --warmup 0.2 --out "$out"
"$root/build/glassbox" eval --checkpoint "$out/model.safetensors" --data fashion-mnist | tee "$out/eval.md"
echo "checkpoint: $out/model.safetensors"
