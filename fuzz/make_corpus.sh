#!/usr/bin/env bash
# Regenerates the committed seed corpora fuzz/corpus/<harness>/ with fuzz/make_corpus.cpp.
# Usage: fuzz/make_corpus.sh [build folder, default build-fuzz]   (any configured build with GB_FUZZ=ON)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
cmake --build "$build" --target fuzz_make_corpus -j2
# Seeds are overwritten in place; regression inputs (crash-*) added by hand stay.
"$build/fuzz/fuzz_make_corpus" fuzz/corpus
