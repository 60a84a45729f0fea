#!/usr/bin/env python3
"""Each foreign fixture in pixelcnn against onnxruntime, in one run: the test
NLL on the same digits (pixelcnn eval vs scripts/foreign/ort_nll.py) and the
per-pixel time of incremental sampling (pixelcnn bench, one thread) against
one onnxruntime full pass (one intra-op thread).

    /work/venv-fixtures/bin/python scripts/foreign/compare_ort.py MNIST_DIR [N]

MNIST_DIR holds the MNIST IDX files; N test digits (default 1000). Needs the
built target/release/pixelcnn, numpy and onnxruntime. The K = 2 digits are
pixelcnn's own binarization (written out by `pixelcnn decompress` of a
`pixelcnn compress` of the same split), so both tools see the same bits.
"""
import gzip
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PIXELCNN = os.path.join(ROOT, "target", "release", "pixelcnn")
ORT_NLL = os.path.join(ROOT, "scripts", "foreign", "ort_nll.py")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "foreign")

# file, --input, K, conditional, bernoulli
MODELS = [
    ("torch_reduced_skips", "unit", 2, False, True),
    ("torch_embed_classes", "index", 4, True, False),
    ("torch_dilated_elu", "index", 256, False, False),
    ("torch_plain_bn", "unit", 256, False, False),
    ("keras_gated_nhwc", "unit", 2, False, False),
    ("keras_gated_nhwc_approx", "unit", 2, False, False),
]


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, arr):
    arr = np.ascontiguousarray(arr, np.uint8)
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with open(path, "wb") as f:
        f.write(header + arr.tobytes())


def find(dir_, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(dir_, name)):
            return os.path.join(dir_, name)
    raise SystemExit(f"{stem} not in {dir_}")


def run(*cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out.stdout


def main():
    data = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    work = tempfile.mkdtemp()
    raw = read_idx(find(data, "t10k-images-idx3-ubyte"))[:n]
    labels = read_idx(find(data, "t10k-labels-idx1-ubyte"))[:n]
    pcnz = os.path.join(work, "t.pcnz")
    run(PIXELCNN, "compress", "--data", data, "--split", "test", "--limit", str(n), "-o", pcnz)
    run(PIXELCNN, "decompress", pcnz, "-o", os.path.join(work, "bin"))
    binary = read_idx(os.path.join(work, "bin", "t10k-images-idx3-ubyte"))
    levels = {2: (binary > 127).astype(np.uint8), 256: raw}
    levels[4] = ((raw.astype(np.int64) * 4) >> 8).astype(np.uint8)
    for k, arr in levels.items():
        write_idx(os.path.join(work, f"k{k}.idx"), arr)
    write_idx(os.path.join(work, "labels.idx"), labels)
    rows = []
    for name, kind, k, conditional, bernoulli in MODELS:
        model = os.path.join(FIXTURES, name + ".onnx")
        ours = json.loads(run(PIXELCNN, "eval", "--model", model, "--input", kind, "--data", data,
                              "--split", "test", "--limit", str(n), "--json"))
        cmd = [sys.executable, ORT_NLL, model, "--images", os.path.join(work, f"k{k}.idx"),
               "--count", str(n), "--input", kind, "--levels", str(k)]
        if conditional:
            cmd += ["--labels", os.path.join(work, "labels.idx")]
        if bernoulli:
            cmd += ["--bernoulli"]
        ort = json.loads(run(*cmd))
        bench = json.loads(run(PIXELCNN, "bench", "--model", model, "--input", kind, "--images", "5", "--json"))
        ratio = ort["ms_per_full_pass"] * 1e3 / bench["per_pixel_us_mean"]
        rows.append((name, k, ours["nats_per_image"], ort["nats_per_image"], ort["ms_per_full_pass"],
                     bench["per_pixel_us_mean"], bench["per_pixel_us_p50"], ratio))
    print(f"| fixture | K | pixelcnn NLL | onnxruntime NLL | difference | ORT full pass (ms) | pixelcnn per pixel, mean (p50) µs | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name, k, a, b, ms, mean, p50, ratio in rows:
        print(f"| {name} | {k} | {a:.4f} | {b:.4f} | {a - b:+.4f} | {ms:.3f} | {mean:.2f} ({p50:.2f}) | {ratio:.0f}x |")
    print(json.dumps([dict(zip(["fixture", "k", "pixelcnn_nll", "ort_nll", "ort_ms_per_pass",
                                "per_pixel_us_mean", "per_pixel_us_p50", "ratio"], r)) for r in rows]))


main()
