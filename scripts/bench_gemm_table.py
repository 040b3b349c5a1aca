#!/usr/bin/python3
"""Runs build/bench/bench_gemm with interleaved repetitions and prints, per case
and thread count, the median GFLOP/s of glassbox and of OpenBLAS (when the
benchmark was built with it) and their ratio; cases below 0.9x are marked.
Usage: scripts/bench_gemm_table.py [--bench build/bench/bench_gemm]
       [--repetitions 5] [--min-time 0.2] [--filter REGEX] [--markdown]
"""
import argparse
import json
import statistics
import subprocess


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bench", default="build/bench/bench_gemm")
    p.add_argument("--repetitions", type=int, default=5)
    p.add_argument("--min-time", default="0.2")
    p.add_argument("--filter", default=".")
    p.add_argument("--markdown", action="store_true")
    a = p.parse_args()
    out = subprocess.run([a.bench, "--benchmark_filter=" + a.filter, "--benchmark_min_time=" + a.min_time,
                          "--benchmark_repetitions=%d" % a.repetitions, "--benchmark_enable_random_interleaving=true",
                          "--benchmark_format=json"], check=True, capture_output=True, text=True).stdout
    runs = {}  # (case, threads) -> impl -> [GFLOP/s]
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        _, impl, case, threads = b["name"].split("/")[:4]
        runs.setdefault((case, threads.split(":")[1]), {}).setdefault(impl, []).append(b["GFLOP/s"])
    listed = subprocess.run([a.bench, "--benchmark_filter=" + a.filter, "--benchmark_list_tests"], check=True,
                            capture_output=True, text=True).stdout.split()
    order = {}
    for name in listed:  # registration order: cases as bench_gemm lists them, 1 thread before 2
        _, _, case, threads = name.split("/")[:4]
        order.setdefault((case, threads.split(":")[1]), len(order))
    rows = []
    for (case, threads), r in sorted(runs.items(), key=lambda kv: (kv[0][1], order[kv[0]])):
        g = statistics.median(r["glassbox"])
        o = statistics.median(r["openblas"]) if "openblas" in r else float("nan")
        rows.append((case, threads, g, o, g / o))
    if a.markdown:
        print("| case | threads | glassbox GFLOP/s | OpenBLAS GFLOP/s | ratio |")
        print("|---|---:|---:|---:|---:|")
        for row in rows:
            print("| %s | %s | %.1f | %.1f | %.2f%s |" % (*row, " (<0.9)" if row[4] < 0.9 else ""))
    else:
        print("%-28s %7s %9s %9s %6s" % ("case", "threads", "glassbox", "openblas", "ratio"))
        for row in rows:
            print("%-28s %7s %9.1f %9.1f %6.2f%s" % (*row, "  <0.9" if row[4] < 0.9 else ""))


if __name__ == "__main__":
    main()
