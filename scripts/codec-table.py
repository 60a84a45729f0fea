#!/usr/bin/env python3
"""The README's compression table: our int8 model against classical codecs
on the same binarized MNIST test digits, every row measured here.

    python3 scripts/codec-table.py --data MNIST_DIR [--limit N]

MNIST_DIR holds the MNIST IDX files (README, "Data").

Needs `pbmtojbg` (Debian: jbigkit-bin), gzip, xz and bzip2 on PATH, and the
built `pixelcnn` (target/release). The digits are the test split binarized
once with the project's fixed seed (the protocol of `pixelcnn eval`), taken
from `pixelcnn decompress` of our own file, so every codec sees exactly the
same bits. Prints a Markdown table and one JSON line.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIXELCNN = os.path.join(ROOT, "target", "release", "pixelcnn")


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def pbm(bits, width, height):
    """P4 bytes of a bi-level image (1 = ink), rows padded to bytes."""
    row = (width + 7) // 8
    out = bytearray(b"P4\n%d %d\n" % (width, height))
    for y in range(height):
        packed = bytearray(row)
        for x in range(width):
            if bits[y * width + x]:
                packed[x // 8] |= 0x80 >> (x % 8)
        out += packed
    return bytes(out)


def png_1bit(bits, width, height):
    """A 1-bit grayscale PNG (zlib level 9), the smallest plain PNG of it."""
    row = (width + 7) // 8
    raw = bytearray()
    for y in range(height):
        raw.append(0)  # filter: none
        packed = bytearray(row)
        for x in range(width):
            if bits[y * width + x]:
                packed[x // 8] |= 0x80 >> (x % 8)
        raw += packed

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="folder with the MNIST IDX files")
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "gated-mnist-int8.pcnn"))
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="codec-table-")
    ours = os.path.join(work, "test.pcnz")
    cmd = [PIXELCNN, "compress", "--model", args.model, "--data", args.data, "--split", "test", "-o", ours, "--json"]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    report = json.loads(run(*cmd).stdout)
    run(PIXELCNN, "decompress", "--model", args.model, ours, "-o", work)
    idx = open(os.path.join(work, "t10k-images-idx3-ubyte"), "rb").read()
    _, n, h, w = struct.unpack(">IIII", idx[:16])
    digits = [[1 if b else 0 for b in idx[16 + i * h * w:16 + (i + 1) * h * w]] for i in range(n)]

    rows = []
    rows.append(("raw, 1 bit per pixel", n * ((h * w + 7) // 8) / n, "784 bits, packed"))
    rows.append(("PNG, 1-bit, per digit (zlib level 9)", sum(len(png_1bit(d, w, h)) for d in digits) / n, "`png_1bit` in this script"))
    jbig = 0
    for i, d in enumerate(digits):
        p = os.path.join(work, "d.pbm")
        open(p, "wb").write(pbm(d, w, h))
        run("pbmtojbg", p, p + ".jbg")
        jbig += os.path.getsize(p + ".jbg")
    rows.append(("JBIG (`pbmtojbg`), per digit", jbig / n, "jbigkit, default options"))
    cols = 100
    grid_rows = (n + cols - 1) // cols
    gw, gh = cols * w, grid_rows * h
    grid = [0] * (gw * gh)
    for i, d in enumerate(digits):
        gx, gy = (i % cols) * w, (i // cols) * h
        for y in range(h):
            grid[(gy + y) * gw + gx:(gy + y) * gw + gx + w] = d[y * w:(y + 1) * w]
    gp = os.path.join(work, "grid.pbm")
    open(gp, "wb").write(pbm(grid, gw, gh))
    run("pbmtojbg", gp, gp + ".jbg")
    rows.append((f"JBIG, all digits in one {cols}-wide grid", os.path.getsize(gp + ".jbg") / n, "the whole set at once"))
    packed = bytearray()
    for d in digits:
        bits = d + [0] * (-len(d) % 8)
        packed += bytes(sum(bits[k + j] << (7 - j) for j in range(8)) for k in range(0, len(bits), 8))
    for name, cmd in [("gzip -9", ["gzip", "-9", "-c"]), ("xz -9e", ["xz", "-9e", "-c"]), ("bzip2 -9", ["bzip2", "-9", "-c"])]:
        rows.append((f"{name}, all digits' packed bits in one stream", len(run(*cmd, input=bytes(packed)).stdout) / n, "the whole set at once"))
    rows.append(("**pixelcnn int8, each digit coded on its own (`pixelcnn compress`)**", report["bytes_per_image"], f"model NLL {report['nll_bits_per_image'] / 8:.2f} B"))
    print(f"| codec ({n} binarized test digits) | bytes per digit | note |")
    print("|---|---|---|")
    for name, b, note in rows:
        print(f"| {name} | {b:.2f} | {note} |")
    print(json.dumps({"digits": n, "rows": {name: round(b, 4) for name, b, _ in rows}, "ours": report}))
    subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    sys.exit(main())
