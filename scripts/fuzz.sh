#!/usr/bin/env bash
# Runs one fuzz target for a fixed time, with libFuzzer and AddressSanitizer
# on the nightly toolchain; exits non-zero on a crash, whose input is left in
# fuzz/artifacts/TARGET/ (docs/fuzzing.md says what to do with it).
#
#   scripts/fuzz.sh pcnn_parse_sample 60
#   scripts/fuzz.sh onnx_import 600
#
# It passes rustc the flags cargo-fuzz 0.13 passes (coverage counters,
# compare tracing, ASan, --cfg fuzzing), so a fresh machine needs no
# `cargo install cargo-fuzz`. New inputs the fuzzer finds go to a scratch
# folder; the committed corpus (fuzz/corpus/TARGET) is read, not written.
# FUZZ_CORPUS_OUT keeps them in a folder of your choice instead.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

target=${1:?usage: scripts/fuzz.sh TARGET SECONDS}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS}
features=()
# Only the ONNX target needs tract-onnx, the slowest build of all.
[[ $target == onnx_import ]] || features=(--no-default-features)

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzzing needs the nightly toolchain (ASan): rustup toolchain install nightly" >&2
    exit 1
fi
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
flags=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    -Cllvm-args=-sanitizer-coverage-stack-depth
    -Cllvm-args=-simplifycfg-branch-fold-threshold=0
    --cfg fuzzing
    -Cdebug-assertions
    -Zsanitizer=address
)
# --target keeps the flags off build scripts and proc macros.
RUSTFLAGS="${flags[*]}" cargo +nightly build --release --target "$triple" \
    --bin "$target" "${features[@]}"

found=${FUZZ_CORPUS_OUT:-$(mktemp -d)}
[[ -n ${FUZZ_CORPUS_OUT:-} ]] || trap 'rm -rf "$found"' EXIT
mkdir -p "$found" "artifacts/$target"
ASAN_OPTIONS=detect_odr_violation=0 "target/$triple/release/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" "$found" "corpus/$target"
