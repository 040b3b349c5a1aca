#!/usr/bin/env bash
# Before/after of bench_models in one session: two builds' binaries run alternately, ROUNDS
# rounds each, then a Markdown table of medians, ranges and ratios (docs/performance.md,
# "The issue-14 restructuring").
# Usage: scripts/bench_ab.sh BEFORE_BIN AFTER_BIN [ROUNDS] [FILTER]
# e.g.   git worktree add /tmp/before <rev> && scripts/setup.sh /tmp/before/build (in that tree), then
#        scripts/bench_ab.sh /tmp/before/build/bench/bench_models build/bench/bench_models 4
set -euo pipefail
before="$1"; after="$2"; rounds="${3:-4}"
filter="${4:-train_step/vgg_mini/128/2|train_step/vgg11/64/2|inference/vgg_mini/64/2|inference/vgg11/1/1|explanation/(saliency|lrp_epsilon_plus_flat|gradcam)/64/2|explanation_from_trace/(saliency|lrp_epsilon_plus_flat|gradcam)/64/2}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores" >&2
for ((r = 1; r <= rounds; ++r)); do
    for which in before after; do
        bin="$before"; [[ $which == after ]] && bin="$after"
        "$bin" --benchmark_filter="$filter" --benchmark_min_time=0.5 --benchmark_format=json > "$out/$which.$r.json"
        echo "round $r/$rounds: $which done" >&2
    done
done
python3 - "$out" <<'PY'
import collections, glob, json, statistics as st, sys
times = collections.defaultdict(lambda: collections.defaultdict(list))
for f in glob.glob(sys.argv[1] + "/*.json"):
    which = f.split("/")[-1].split(".")[0]
    for b in json.load(open(f))["benchmarks"]:
        scale = {"ms": 1, "us": 1e-3, "ns": 1e-6, "s": 1e3}[b["time_unit"]]
        times[b["name"].replace("/real_time", "")][which].append(b["real_time"] * scale)
print("| case | before (ms) | after (ms) | after / before (medians) | min after / min before |")
print("|---|---|---|---|---|")
for name, v in times.items():
    b, a = v["before"], v["after"]
    print(f"| {name} | {st.median(b):.2f} ({min(b):.2f}-{max(b):.2f}) | {st.median(a):.2f} ({min(a):.2f}-{max(a):.2f}) "
          f"| {st.median(a) / st.median(b):.2f} | {min(a) / min(b):.2f} |")
PY
