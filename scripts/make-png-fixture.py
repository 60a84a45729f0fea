#!/usr/bin/env python3
"""Writes tests/fixtures/png-digits: the first 12 training digits of each
class from tests/fixtures/mnist-mini as 8-bit grayscale PNGs, one folder per
class (`0/` … `9/`), for tests of PNG-folder data.

usage: scripts/make-png-fixture.py [MNIST_DIR] [OUT_DIR]
"""
import gzip, struct, sys, zlib, pathlib

src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/mnist-mini")
out = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/png-digits")
PER_CLASS = 12

images = gzip.open(src / "train-images-idx3-ubyte.gz").read()[16:]
labels = gzip.open(src / "train-labels-idx1-ubyte.gz").read()[8:]

def png(pixels, w, h):
    raw = b"".join(b"\0" + pixels[y * w:(y + 1) * w] for y in range(h))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))

counts = [0] * 10
for i, label in enumerate(labels):
    if counts[label] == PER_CLASS:
        continue
    folder = out / str(label)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{counts[label]:02d}.png").write_bytes(png(images[i * 784:(i + 1) * 784], 28, 28))
    counts[label] += 1
assert counts == [PER_CLASS] * 10, counts
