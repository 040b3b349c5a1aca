#!/usr/bin/env bash
# Regenerate or check the explanation references in tests/data/*.safetensors
# (tests/python/make_references.py; tests/data/README.md says what they hold).
#
#   scripts/references.sh            rewrite tests/data/*.safetensors
#   scripts/references.sh --check    regenerate into a temp folder, compare with tests/data
#   scripts/references.sh --setup    only make the environment
#   (other arguments go to make_references.py: --only FILE[,FILE], --out DIR, --seed-dir DIR)
#
# The environment is made on demand, pinned as in the files' metadata: Debian's python3-torch
# 1.13.1, python3-numpy 1.24.2 and python3-opencv 4.6.0 (plus python3-matplotlib, python3-tqdm
# and python3-packaging, which Captum imports), a venv with zennit 0.5.1, captum 0.8.0 and
# safetensors 0.4.5 from PyPI, and OpenBLAS 0.3.21 (libopenblas0-pthread, unpacked into the venv,
# not installed) as torch's BLAS: the stored files were made with it, with its Cooperlake tables
# (AVX-512 + BF16 CPUs), and Linear layers only reproduce bit for bit with the same kernels and
# blocking (Debian's default reference BLAS rounds differently). On AVX-512 CPUs this forces
# OpenBLAS's SkylakeX tables (same kernels; 0.3.21 cannot be forced to Cooperlake, and does not
# know every newer CPU) and make_references.py sets their SGEMM blocking to Cooperlake's.
# Environment: GB_REFENV (the venv, default build/refenv).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${GB_REFENV:-$root/build/refenv}"
setup_only=0
if [[ "${1:-}" == "--setup" ]]; then
    setup_only=1
    shift
fi

packages=(python3-venv python3-numpy python3-torch python3-opencv python3-matplotlib python3-tqdm python3-packaging)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "references: installing ${missing[*]}"
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! "$venv/bin/python" -c 'import importlib.metadata as m
assert (m.version("zennit"), m.version("captum"), m.version("safetensors")) == ("0.5.1", "0.8.0", "0.4.5")' \
        2>/dev/null; then
    echo "references: creating $venv (system torch + zennit 0.5.1, captum 0.8.0, safetensors 0.4.5)"
    mkdir -p "$(dirname "$venv")"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        zennit==0.5.1 captum==0.8.0 safetensors==0.4.5
fi

openblas="$venv/openblas"
if [[ ! -e "$openblas/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3" ]]; then
    echo "references: unpacking libopenblas0-pthread into $openblas"
    tmp="$(mktemp -d)"
    (cd "$tmp" && apt-get download -qq libopenblas0-pthread=0.3.21+ds-4 2>/dev/null)
    mkdir -p "$openblas"
    dpkg-deb -x "$tmp"/libopenblas0-pthread_*.deb "$openblas"
    rm -rf "$tmp"
fi
((setup_only)) && exit 0

export LD_LIBRARY_PATH="$openblas/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
if grep -qw avx512f /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=SkylakeX
else
    echo "references: no AVX-512 on this CPU: OpenBLAS cannot use the kernels the files were made with," \
         "so Linear-layer results differ from the stored ones in the last bits" >&2
fi
exec "$venv/bin/python" "$root/tests/python/make_references.py" "$@"
