#!/usr/bin/env bash
# Runs every example (examples/cpp built as an outside project, examples/python) on small
# data, as CI does: train vgg-mini for one epoch on 10,000 Fashion-MNIST images (from C++ and
# from Python), explain and evaluate that checkpoint, a custom rule and composite, and a torchvision VGG-11 exported from
# PyTorch. Usage: scripts/run_examples.sh EXAMPLES_BUILD_DIR PYTHON OUT_DIR
#   (PYTHON must import glassbox, torch, torchvision and safetensors)
set -euo pipefail
bin="$1"; py="$2"; out="$3"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rm -rf "$out" && mkdir -p "$out"
step() { echo "examples: $*"; "$@"; }
step "$bin/first_steps"
step "$bin/train" "$out/train" 1 10000
step "$bin/explain" "$out/train/model.safetensors" "$out/explain-cpp"
step "$bin/custom_rule"
step "$bin/evaluate" "$out/train/model.safetensors" 50
step "$py" "$root/examples/python/explain.py" "$out/train/model.safetensors" "$out/explain-py"
step "$py" "$root/examples/python/train.py" "$out/train-py" 1 10000
step "$py" "$root/examples/python/evaluate.py" "$out/train-py/model.safetensors" "$out/evaluate-py" 50
step "$py" "$root/examples/python/custom_composite.py"
step "$py" "$root/examples/python/torchvision_vgg.py" "$out/torchvision"
step "$bin/torchvision" "$out/torchvision/vgg11.safetensors" "$out/torchvision/picture.png" "$out/torchvision/cpp"
echo "examples: all ran"
