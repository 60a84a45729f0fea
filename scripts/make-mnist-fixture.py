#!/usr/bin/env python3
"""Writes tests/fixtures/mnist-mini: the first 600 training and 200 test
images of MNIST (with labels) as gzip IDX files, for tests that must not
depend on files outside the repository.

usage: scripts/make-mnist-fixture.py MNIST_DIR [OUT_DIR]
(MNIST_DIR: the MNIST IDX files, gzipped; README, "Data")
"""
import gzip, struct, sys, pathlib

if len(sys.argv) < 2:
    sys.exit(__doc__)
src = pathlib.Path(sys.argv[1])
out = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/mnist-mini")
out.mkdir(parents=True, exist_ok=True)

def cut(name, count):
    data = gzip.open(src / f"{name}.gz").read()
    rank = data[3]
    dims = list(struct.unpack(f">{rank}I", data[4:4 + 4 * rank]))
    item = 1
    for d in dims[1:]:
        item *= d
    header = 4 + 4 * rank
    dims[0] = count
    body = data[header:header + count * item]
    blob = data[:4] + struct.pack(f">{rank}I", *dims) + body
    # mtime=0 keeps the output byte-identical from run to run.
    with open(out / f"{name}.gz", "wb") as f:
        f.write(gzip.compress(blob, mtime=0))

for prefix, count in [("train", 600), ("t10k", 200)]:
    cut(f"{prefix}-images-idx3-ubyte", count)
    cut(f"{prefix}-labels-idx1-ubyte", count)
print("wrote", out)
