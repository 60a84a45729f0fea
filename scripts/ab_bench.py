#!/usr/bin/env python3
"""Interleaved A/B of two `pixelcnn` binaries on whole digits.

The build VM's speed drifts by 10-40% within minutes, so two binaries are
only compared in pairs run back to back (the order alternating), and the
ratio that counts is the median of the pairs' ratios, not a ratio of
medians taken minutes apart.

    python3 scripts/ab_bench.py --pairs 12 OLD_BINARY NEW_BINARY -- --images 40
    python3 scripts/ab_bench.py OLD NEW -- --images 16 --batch 32 --threads 1

Everything after `--` goes to `pixelcnn bench` (with `--json`; the model is
the int8 default unless given). `--cpu N` pins both to one core (taskset).
"""
import argparse
import json
import statistics
import subprocess
import sys

KEYS = ["image_ms", "per_pixel_us_p50", "per_pixel_us_p99", "per_row_us_p50"]


def bench(binary, args, cpu):
    cmd = ([] if cpu is None else ["taskset", "-c", str(cpu)]) + [binary, "bench", "--json"]
    if "--model" not in args:
        cmd += ["--model", "models/gated-mnist-int8.pcnn", "--precision", "int8"]
    out = subprocess.run(cmd + args, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{binary} bench failed:\n{out.stderr}")
    return json.loads(out.stdout)


def main():
    argv = sys.argv[1:]
    bench_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    ours = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--pairs", type=int, default=10)
    p.add_argument("--cpu", type=int, default=None, help="pin both binaries to this core")
    a = p.parse_args(ours)
    runs = {a.old: [], a.new: []}
    for i in range(a.pairs):
        for binary in (a.old, a.new) if i % 2 == 0 else (a.new, a.old):
            runs[binary].append(bench(binary, bench_args, a.cpu))
    pairs = list(zip(runs[a.old], runs[a.new]))
    print(f"{a.pairs} interleaved pairs, new/old (below 1: the new binary is faster)")
    for key in KEYS:
        ratios = [n[key] / o[key] for o, n in pairs]
        print(
            f"{key:18} old {statistics.median(d[key] for d in runs[a.old]):9.4f}"
            f"  new {statistics.median(d[key] for d in runs[a.new]):9.4f}"
            f"  median pair ratio {statistics.median(ratios):.3f}"
            f"  (pairs {min(ratios):.3f} .. {max(ratios):.3f})"
        )
    if "threads" in runs[a.old][0]:
        ratios = [n["threads"]["digits_per_s"] / o["threads"]["digits_per_s"] for o, n in pairs]
        print(f"{'digits_per_s':18} median pair ratio {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
