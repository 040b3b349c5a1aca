#!/usr/bin/env bash
# Set up glassbox from nothing: install the Debian packages it needs (when
# missing), create the Python environment of the PyTorch/Zennit comparison tests
# and of the Python module (<build-dir>/pyenv: Debian's torch, torchvision and pytest + zennit 0.5.1,
# captum 0.8.0, safetensors 0.4.5, nanobind 2.9.2 and quantus 0.5.3 from PyPI), then configure and build (the
# library, the program, the tests, the benchmarks and the Python module in <build-dir>/python). Usage: scripts/setup.sh [build-dir] [extra cmake args...]
# Environment: GB_JOBS (parallel build jobs, default: number of cores),
# GB_NATIVE (ON: compile for this machine's CPU, the default; OFF: portable),
# GB_REFERENCES (1: also make the pinned Zennit/Captum environment that regenerates tests/data,
# scripts/references.sh --setup; off by default).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
shift || true

packages=(build-essential cmake pkg-config doctest-dev libstb-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev
          zlib1g-dev libopenmpi-dev openmpi-bin dataset-fashion-mnist python3-venv python3-dev python3-numpy python3-torch python3-torchvision
          python3-pytest python3-matplotlib python3-tqdm python3-packaging
          python3-scipy python3-sklearn python3-skimage python3-pandas python3-opencv)

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

# The tests that compare with PyTorch, Zennit and Captum run this Python (tests/python/, tests/pytest/);
# nanobind builds the Python module against it. --no-deps: Debian's torch is the torch (Captum's other
# imports, matplotlib, tqdm and packaging, are Debian's too, and so are Quantus' scipy, sklearn, skimage,
# pandas and cv2; quantus 0.5.3 imports with Debian's numpy 1.24 and torch 1.13: tests/pytest/test_quantus.py).
venv="$build/pyenv"
if ! "$venv/bin/python" -c 'import importlib.metadata as m, torch, torchvision, safetensors.torch, pytest
assert m.version("zennit") == "0.5.1" and m.version("safetensors") == "0.4.5"
assert m.version("captum") == "0.8.0" and m.version("nanobind") == "2.9.2" and m.version("quantus") == "0.5.3"' \
        2>/dev/null; then
    py_start=$(date +%s)
    echo "setup: creating $venv (system torch/torchvision + zennit 0.5.1, captum 0.8.0, safetensors 0.4.5, nanobind 2.9.2, quantus 0.5.3)"
    mkdir -p "$build"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps zennit==0.5.1 captum==0.8.0 \
        safetensors==0.4.5 nanobind==2.9.2 quantus==0.5.3
    echo "setup: Python environment ready in $(( $(date +%s) - py_start )) s"
fi

if [[ "${GB_REFERENCES:-0}" == 1 ]]; then
    GB_REFENV="${GB_REFENV:-$build/refenv}" "$root/scripts/references.sh" --setup
fi

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGB_NATIVE="${GB_NATIVE:-ON}" -DGB_PYTHON="$venv/bin/python" "$@"
cmake --build "$build" -j "${GB_JOBS:-$(nproc)}"
