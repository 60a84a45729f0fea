#!/usr/bin/env python3
"""Injects known faults into the executors, one at a time, runs the oracle
tests and prints which tests failed: a Markdown table for docs/runtime.md.

A fault no test catches is a hole in the tests. Each file is restored after
its run, and on any exit.

    python3 scripts/fault-table.py            # every fault
    python3 scripts/fault-table.py ring plain # faults whose name has a word
"""
import atexit
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RT = "runtime/src/"
TESTS = [
    "incremental_equals_reference",
    "causality",
    "receptive_field",
    "sampling",
    "int8_incremental_equals_int8_full_pass",
    "golden_int8",
]

# (name, description, file, text, replacement). `text` must occur once.
FAULTS = [
    ("window", "left window not cleared at the start of a row (shared by gated f32 and int8)",
     RT + "exec/raster.rs", "        window.fill(T::default());\n", ""),
    ("push", "push without computing the pixel's hidden state first",
     RT + "exec/raster.rs", "        // whether or not anybody asked for its logits.\n        self.hidden()?;\n",
     "        // whether or not anybody asked for its logits.\n"),
    ("row0", "per-row step skipped on row 0 (stale links from the last image)",
     RT + "exec/raster.rs", "            if j == 0 {", "            if j == 0 && i > 0 {"),
    ("ring", "f32: vertical ring written one row off (`slot = (row + 1) % ring_rows`)",
     RT + "exec/gated.rs", "let slot = row % ring_rows;", "let slot = (row + 1) % ring_rows;"),
    ("ring-read", "f32: vertical convolution reads the ring one row off",
     RT + "exec/gated.rs", "&input[(y % input_rows)", "&input[((y + 1) % input_rows)"),
    ("downshift", "f32: vertical kernel one row low (reads the current row: the down-shift lost)",
     RT + "exec/gated.rs", "(row + ky).checked_sub(r)", "(row + 1 + ky).checked_sub(r)"),
    ("reference-link", "reference: link without the down-shift",
     RT + "host/reference.rs", "&v_pre.shift_down(),", "&v_pre,"),
    ("link-column", "f32: link read one column to the left",
     RT + "exec/gated.rs", "&self.links[(l * w + j) * p2..]", "&self.links[(l * w + j.saturating_sub(1)) * p2..]"),
    ("link-bias", "f32: row-0 links left without their bias",
     RT + "exec/gated.rs", "T::copy_to(&mut self.links[(l * w + x) * p2..][..p2], bias);",
     "self.links[(l * w + x) * p2..][..p2].fill(0.0 * bias.len() as f32);"),
    ("int8-link-bias", "int8: row-0 links one unit off their bias",
     RT + "exec/gated_int8.rs", "*link = clamp_i16(mult.get(o).apply(bias[o]));",
     "*link = clamp_i16(mult.get(o).apply(bias[o]) + 1);"),
    ("int8-ring", "int8: vertical ring written one slot late",
     RT + "exec/gated_int8.rs", "let slot = row % ring_rows;", "let slot = (row + 1) % ring_rows;"),
    ("int8-block", "int8: block output dropped (residual only)",
     RT + "exec/gated_int8.rs", ".saturating_add(out_mult.get(o).apply(out[o]));",
     ".saturating_add(0 * out_mult.get(o).apply(out[o]));"),
    ("int8-relu", "int8: head ReLU removed",
     RT + "exec/gated_int8.rs", "*t = (*t).max(0);", "*t = (*t).max(i8::MIN);"),
    ("int8-window", "int8: vertical window misses its right column",
     RT + "exec/gated_int8.rs", "let (kx0, kx1) = columns_inside(r, k, w, x);",
     "let (kx0, kx1) = columns_inside(r, k, w, x);\n let kx1 = kx1.min(k - 1);"),
    ("plain-mask", "plain: mask A sees the current pixel (mask B on layer 0)",
     RT + "exec/plain.rs", "let left_width = if l == 0 { r } else { r + 1 };", "let left_width = r + 1;"),
    ("plain-ring", "plain: input pixel stored one ring row off",
     RT + "exec/plain.rs", "let slot = i % (arch.radius_of(0) + 1);", "let slot = (i + 1) % (arch.radius_of(0) + 1);"),
    ("plain-residual", "plain: residual connection dropped",
     RT + "exec/plain.rs", "*c += a;", "*c = *a;"),
]

originals = {}


def restore():
    for path, text in originals.items():
        path.write_text(text)


atexit.register(restore)


def run_tests():
    cmd = ["cargo", "test", "--release", "-p", "pixelcnn-runtime", "--features", "alloc",
           "--no-fail-fast"]
    for t in TESTS:
        cmd += ["--test", t]
    log = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True).stdout
    if "error[" in log or "error: could not compile" in log:
        return None, log
    failed = {}
    binary = None
    for line in log.splitlines():
        m = re.search(r"Running tests/(\w+)\.rs", line)
        if m:
            binary = m.group(1)
        m = re.match(r"test (\S+) \.\.\. FAILED", line)
        if m:
            failed.setdefault(binary, []).append(m.group(1))
    return failed, log


def main():
    words = sys.argv[1:]
    print("| fault | tests that failed |")
    print("|---|---|")
    for name, what, file, text, replacement in FAULTS:
        if words and not any(w in name for w in words):
            continue
        path = ROOT / file
        source = path.read_text()
        assert source.count(text) == 1, f"{name}: the text to break is not once in {file}"
        originals[path] = source
        path.write_text(source.replace(text, replacement))
        failed, log = run_tests()
        path.write_text(source)
        if failed is None:
            print(f"| {what} | (did not compile) |")
            sys.stderr.write(log[-3000:])
            continue
        cells = [f"`{b}`" + (f" ({', '.join(sorted(set(n)))})" if n else "")
                 for b, n in sorted(failed.items())]
        print(f"| {what} | {'; '.join(cells) if cells else '**none**'} |", flush=True)


if __name__ == "__main__":
    main()
