#!/usr/bin/env bash
# The main job from nothing: set up (packages + build), train vgg-mini on
# Fashion-MNIST (a short run), evaluate the checkpoint on the test split, then
# explain eight test images with LRP, Grad-CAM and gradient methods (report.html).
# Environment: GB_EPOCHS (default 1), GB_OUT (default runs/vgg-mini).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" "$root/build"
out="${GB_OUT:-$root/runs/vgg-mini}"
"$root/build/glassbox" info
"$root/build/glassbox" train --model vgg-mini --data fashion-mnist --epochs "${GB_EPOCHS:-1}" \
    --batch-size 128 --lr 0.05 --out "$out"
"$root/build/glassbox" eval --checkpoint "$out/model.safetensors" --data fashion-mnist | tee "$out/eval.md"
"$root/build/glassbox" explain --checkpoint "$out/model.safetensors" --data fashion-mnist --index 0 1 2 3 4 5 6 7 \
    --method lrp:epsilon-plus-flat --method lrp:epsilon-gamma-box --method gradcam --method saliency \
    --method ig --out "$out/explain"
echo "checkpoint: $out/model.safetensors"
echo "report: $out/explain/report.html"
