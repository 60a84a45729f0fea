#!/usr/bin/env python3
"""onnxruntime's full pass per pixel against our cached sampling, in one run.

The naive way to sample a PixelCNN with an inference engine is one full
forward pass per pixel. This times onnxruntime doing exactly that on the
exported ONNX model (batch 1, one intra-op thread, all graph optimisations),
then `pixelcnn bench` on the same model converted to int8 (and optionally
f32), one after the other on the same core, and prints the ratios.

    python3 -m venv /tmp/ortenv && /tmp/ortenv/bin/pip install onnxruntime numpy
    /tmp/ortenv/bin/python scripts/vs_onnxruntime.py            # --help for options

onnxruntime stays out of the Rust build: nothing is downloaded unless you
run this script.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def time_onnxruntime(model, passes, warmup):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    height, width = int(shape[2]), int(shape[3])
    feeds = {"pixels": np.zeros((1, 1, height, width), np.float32)}
    if len(session.get_inputs()) > 1:
        feeds["label"] = np.array([3], np.int64)
    for _ in range(warmup):
        session.run(None, feeds)
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    return statistics.median(times), height * width


def pixelcnn_bench(binary, model, precision, images):
    cmd = [binary, "bench", "--model", model, "--precision", precision,
           "--images", str(images), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onnx", default="models/gated-mnist.onnx", help="float ONNX model")
    ap.add_argument("--pcnn", default="models/gated-mnist-int8.pcnn",
                    help="the same model as int8 .pcnn")
    ap.add_argument("--pixelcnn", default="target/release/pixelcnn",
                    help="the pixelcnn binary (cargo build --release --bin pixelcnn)")
    ap.add_argument("--passes", type=int, default=200, help="timed onnxruntime passes")
    ap.add_argument("--images", type=int, default=10, help="images pixelcnn bench samples")
    ap.add_argument("--f32", action="store_true", help="also time our f32 cached sampling")
    args = ap.parse_args()
    if not os.path.exists(args.pixelcnn):
        sys.exit(f"{args.pixelcnn} not found: run `cargo build --release --bin pixelcnn` first")

    # Both on one core, so neither gets a second one.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    full_pass, pixels = time_onnxruntime(args.onnx, args.passes, warmup=20)
    runs = [("int8", args.pcnn)] + ([("f32", args.onnx)] if args.f32 else [])
    report = {
        "cpu": cpu_name(),
        "onnxruntime": ort.__version__,
        "onnxruntime_full_pass_ms": full_pass * 1e3,
        "onnxruntime_per_image_ms": full_pass * 1e3 * pixels,
    }
    print(f"CPU: {report['cpu']}; onnxruntime {ort.__version__}, 1 thread")
    print(f"onnxruntime full pass (= naive cost of one pixel): {full_pass * 1e3:.3f} ms "
          f"(median of {args.passes}); naive digit: {full_pass * pixels:.2f} s")
    for precision, model in runs:
        bench = pixelcnn_bench(args.pixelcnn, model, precision, args.images)
        mean_us = bench["per_pixel_us_mean"]
        ratio = full_pass * 1e6 / mean_us
        report[precision] = {"per_pixel_mean_us": mean_us,
                             "per_pixel_p50_us": bench["per_pixel_us_p50"],
                             "per_image_ms": bench["image_ms"], "kernel": bench.get("kernel"),
                             "vs_onnxruntime_per_pixel": ratio}
        print(f"pixelcnn {precision} cached ({bench.get('kernel') or 'float'}): "
              f"{bench['image_ms']:.2f} ms per digit, {mean_us:.2f} µs per pixel on average; "
              f"{ratio:.0f}x faster per pixel than onnxruntime's full pass "
              f"(one pass per image would be {pixels}x)")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
