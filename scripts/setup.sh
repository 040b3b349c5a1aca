#!/usr/bin/env bash
# Set up glassbox from nothing: install the Debian packages it needs (when
# missing), create the Python environment of the PyTorch/Zennit comparison tests
# (<build-dir>/pyenv: Debian's torch and torchvision + zennit 0.5.1 and safetensors 0.4.5 from PyPI),
# then configure and build. Usage: scripts/setup.sh [build-dir] [extra cmake args...]
# Environment: GB_JOBS (parallel build jobs, default: number of cores),
# GB_NATIVE (ON: compile for this machine's CPU, the default; OFF: portable),
# GB_REFERENCES (1: also make the pinned Zennit/Captum environment that regenerates tests/data,
# scripts/references.sh --setup; off by default).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
shift || true

packages=(build-essential cmake pkg-config doctest-dev libstb-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev
          zlib1g-dev dataset-fashion-mnist python3-venv python3-numpy python3-torch python3-torchvision)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    apt_start=$(date +%s)
    echo "setup: installing ${missing[*]}"
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
    echo "setup: packages installed in $(( $(date +%s) - apt_start )) s"
fi

# The tests that compare with PyTorch and Zennit run this Python (tests/python/).
venv="$build/pyenv"
if ! "$venv/bin/python" -c 'import importlib.metadata as m, torch, torchvision, safetensors.torch
assert m.version("zennit") == "0.5.1" and m.version("safetensors") == "0.4.5"' \
        2>/dev/null; then
    py_start=$(date +%s)
    echo "setup: creating $venv (system torch/torchvision + zennit 0.5.1, safetensors 0.4.5)"
    mkdir -p "$build"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps zennit==0.5.1 safetensors==0.4.5
    echo "setup: Python environment ready in $(( $(date +%s) - py_start )) s"
fi

if [[ "${GB_REFERENCES:-0}" == 1 ]]; then
    GB_REFENV="${GB_REFENV:-$build/refenv}" "$root/scripts/references.sh" --setup
fi

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGB_NATIVE="${GB_NATIVE:-ON}" -DGB_PYTHON="$venv/bin/python" "$@"
cmake --build "$build" -j "${GB_JOBS:-$(nproc)}"
