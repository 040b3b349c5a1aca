#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ with clang (build-fuzz/: the library instrumented with
# -fsanitize=fuzzer-no-link,address,undefined) and runs each for the given seconds on a copy of its
# seed corpus (fuzz/corpus/<name>/ is never modified). Fails when a harness finds a crash, a
# sanitizer report, a leak or a timeout; the reproducer is left in build-fuzz/findings/<name>/.
#
# Usage: scripts/fuzz.sh [seconds-per-harness, default 60] [--all] [--build-only]
#   --all         also builds everything else (library, program, doctest suite) with clang, the check
#                 that the whole project compiles with clang as well as g++ (the tests are not run
#                 here: `ctest --test-dir build-fuzz` runs them under the sanitizers, as CI does).
#                 Without MPI (GB_MPI=OFF): OpenMPI's own allocations show as leaks under LeakSanitizer,
#                 and this build is the check that a build without MPI works as before.
#   --build-only  builds, fuzzes nothing.
# Environment: CXX (default clang++), JOBS (default 2), GB_FUZZ_HARNESSES (default: all six),
#   GB_PYTHON (the Python of the PyTorch comparison tests, for running the --all build's suite).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
all=0
build_only=0
for a in "$@"; do
    case "$a" in
        --all) all=1 ;;
        --build-only) build_only=1 ;;
        ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [seconds-per-harness] [--all] [--build-only]" >&2; exit 2 ;;
        *) seconds=$a ;;
    esac
done
jobs=${JOBS:-2}
harnesses=${GB_FUZZ_HARNESSES:-"safetensors npy idx cifar image method_spec"}
build=build-fuzz

stage() { echo "== $1: $(( $(date +%s) - $2 )) s"; }

# clang and its runtime libraries (libFuzzer, the sanitizers), when missing.
missing=()
for p in clang libclang-rt-14-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    t=$(date +%s)
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
    stage "install ${missing[*]}" "$t"
fi

t=$(date +%s)
mkdir -p "$build"
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="${CXX:-clang++}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DGB_FUZZ=ON -DGB_CUDA=OFF -DGB_MPI=OFF -DGB_NATIVE=OFF -DGB_BUILD_BENCH=OFF ${GB_PYTHON:+-DGB_PYTHON="$GB_PYTHON"} \
      > "$build/configure.log" 2>&1 ||
    { cat "$build/configure.log"; exit 1; }
stage configure "$t"

t=$(date +%s)
cmake --build "$build" -j"$jobs" --target fuzz_all
stage "build harnesses" "$t"

if [ "$all" = 1 ]; then
    t=$(date +%s)
    cmake --build "$build" -j"$jobs"
    stage "build everything with clang" "$t"
fi

[ "$build_only" = 1 ] && exit 0

export GB_NUM_THREADS=1  # the readers are serial; one thread keeps the runs reproducible
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for name in $harnesses; do
    t=$(date +%s)
    mkdir -p "$work/$name" "$build/findings/$name"
    cp -r "fuzz/corpus/$name/." "$work/$name/"
    # -rss_limit_mb: the readers' own limits keep a hostile file far below this; -timeout: a
    # single input taking more than 10 s is a hang.
    if ! "$build/fuzz/fuzz_$name" "$work/$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 \
            -max_len=65536 -print_final_stats=1 -artifact_prefix="$build/findings/$name/" \
            > "$build/findings/$name.log" 2>&1; then
        failed+=("$name")
        echo "!! fuzz_$name failed; the last lines of $build/findings/$name.log:"
        tail -40 "$build/findings/$name.log"
        ls -l "$build/findings/$name/"
    fi
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$build/findings/$name.log" | tr '\n' ' ' || true
    echo
    stage "fuzz $name" "$t"
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing found problems in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzzing: no crash in $(echo $harnesses | wc -w) harnesses x ${seconds} s"
