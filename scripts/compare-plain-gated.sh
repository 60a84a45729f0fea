#!/usr/bin/env bash
# The seed blog's comparison, reproduced: the plain PixelCNN (masked
# convolutions, with a blind spot) against the Gated PixelCNN, both trained
# on the same budget, side by side: test NLL, class-conditional samples from
# the same seeds, and completions of the same occluded test digits.
#
#   scripts/compare-plain-gated.sh MNIST_DIR
#
# MNIST_DIR holds the four MNIST IDX files (README, "Data").
#
# Writes docs/compare-samples-{plain,gated}.png and
# docs/compare-completions-{plain,gated}.png, and prints the test NLL of
# both runs as JSON lines. Both models run in f32 (the runtime's int8 path
# is for gated models), with the incremental executor of each.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: scripts/compare-plain-gated.sh MNIST_DIR (a folder with the MNIST IDX files; README, "Data")}
plain_run=${PLAIN_RUN:-models/runs/pixelcnn-b8}
gated_run=${GATED_RUN:-models/runs/gated-mnist-b8}

# One build of the whole workspace's binaries: the features it unifies are
# those of the README's test command, so a warm target is used as it is
# (building each package alone resolves other features and rebuilds both).
cargo build --release -q --workspace --bins
trainer=target/release/trainer
pixelcnn=target/release/pixelcnn
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for kind in plain gated; do
    run=${kind}_run
    run=${!run}
    echo "== $kind: $run" >&2
    "$trainer" export --run "$run" --out "$work/$kind.onnx" >&2
    # Two seeds per class, one column per class: the same seeds for both.
    "$pixelcnn" sample --model "$work/$kind.onnx" --precision f32 --count 20 --seed 1 \
        --out "docs/compare-samples-$kind.png" >&2
    "$pixelcnn" complete --model "$work/$kind.onnx" --precision f32 --data "$data" \
        --split test --limit 5 --seed 1 --out "docs/compare-completions-$kind.png" >&2
    printf '{"model": "%s", "run": "%s", "test": %s}\n' "$kind" "$run" \
        "$("$trainer" eval --run "$run" --data "$data" --split test --json)"
done
