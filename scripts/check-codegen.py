#!/usr/bin/env python3
"""Checks that the one-image int8 kernels compiled the way they were measured.

A pixel at batch 1 is a chain of nine fused gated steps and a fused head
(`runtime/src/kernels/x86_64/gated_step_avx512vnni.rs`, `head_avx512vnni.rs`):
every intermediate is meant to stay in registers. LLVM decides inlining and
unrolling by the size of the caller, and small, unrelated changes to these
kernels have made it leave a helper out of line (`packed_i8::step`,
`gated_step_i8::product`) or a loop rolled with its accumulators on the
stack: pixels 3-13% slower each time, with every test still passing.

This fails when a function of those kernels in the release binary calls a
function by name (panics go through the GOT and stay allowed) or moves a
vector register to or from the stack.

    python3 scripts/check-codegen.py [target/release/pixelcnn]

x86_64 only (elsewhere it says so and passes); needs binutils' `nm` and
`objdump`.
"""

import platform
import re
import shutil
import subprocess
import sys

KERNELS = (
    "pixelcnn_runtime::kernels::x86_64::gated_step_avx512vnni::",
    "pixelcnn_runtime::kernels::x86_64::head_avx512vnni::",
)
NAMED_CALL = re.compile(r"\scall\s+[0-9a-f]+ <(?P<target>[^>]+)>")
VECTOR_STACK = re.compile(r"[xyz]mm\d+.*\(%r[sb]p|\(%r[sb]p.*[xyz]mm\d+")


def functions(binary):
    """(start, size, name) of every kernel function in `binary`."""
    out = subprocess.run(
        ["nm", "-C", "-S", "--defined-only", binary], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in out.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) == 4 and any(parts[3].startswith(k) for k in KERNELS):
            found.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    return found


def problems(binary, start, size):
    """The offending instructions of one function."""
    asm = subprocess.run(
        [
            "objdump", "-d", "-C", "--no-show-raw-insn",
            f"--start-address={start:#x}", f"--stop-address={start + size:#x}", binary,
        ],
        capture_output=True, text=True, check=True,
    ).stdout
    bad = []
    for line in asm.splitlines():
        if NAMED_CALL.search(line) or VECTOR_STACK.search(line):
            bad.append(line.strip())
    return bad


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/pixelcnn"
    if platform.machine() not in ("x86_64", "AMD64"):
        print(f"check-codegen: {platform.machine()} host, the kernels checked are x86_64's: skipped")
        return 0
    for tool in ("nm", "objdump"):
        if shutil.which(tool) is None:
            print(f"check-codegen: `{tool}` not found; install binutils", file=sys.stderr)
            return 2
    found = functions(binary)
    if not found:
        print(
            f"check-codegen: no fused kernel symbols in {binary}: build it with "
            "`cargo build --release --bin pixelcnn` (symbols kept)",
            file=sys.stderr,
        )
        return 2
    failed = False
    for start, size, name in found:
        bad = problems(binary, start, size)
        if bad:
            failed = True
            print(f"check-codegen: {name} ({size} bytes) is not all in registers:", file=sys.stderr)
            for line in bad[:12]:
                print(f"    {line}", file=sys.stderr)
            if len(bad) > 12:
                print(f"    … {len(bad) - 12} more", file=sys.stderr)
    if failed:
        print(
            "check-codegen: a helper was left out of line or a loop rolled with its "
            "accumulators on the stack; see the comments in kernels/x86_64/gated_step_avx512vnni.rs, "
            "and measure a whole digit (pixelcnn bench) before and after",
            file=sys.stderr,
        )
        return 1
    names = ", ".join(sorted({n.rsplit("::", 2)[-2] + "::" + n.rsplit("::", 1)[-1] for _, _, n in found}))
    print(f"check-codegen: {len(found)} fused kernel functions in registers ({names})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
