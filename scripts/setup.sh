#!/usr/bin/env bash
# Set up glassbox from nothing: install the Debian packages it needs (when
# missing), then configure and build. Usage: scripts/setup.sh [build-dir] [extra cmake args...]
# Environment: GB_JOBS (parallel build jobs, default: number of cores),
# GB_NATIVE (ON: compile for this machine's CPU, the default; OFF: portable).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
shift || true

packages=(build-essential cmake pkg-config doctest-dev libstb-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev
          zlib1g-dev dataset-fashion-mnist)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGB_NATIVE="${GB_NATIVE:-ON}" "$@"
cmake --build "$build" -j "${GB_JOBS:-$(nproc)}"
