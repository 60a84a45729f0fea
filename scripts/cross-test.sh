#!/usr/bin/env bash
# Cross builds and tests for the Raspberry Pi and a Cortex-M4F, with Debian's
# Rust packages (rustc 1.96) and qemu-user; docs/cross.md has the recipes.
#
#   aarch64-unknown-linux-gnu      runtime tests (golden int8 samples included)
#                                  under qemu as a Pi 4 (Cortex-A72, NEON
#                                  kernel) and, the same binaries, as a Pi 5
#                                  (Cortex-A76, NEON dotprod kernel); the
#                                  pixelcnn CLI, which picks its kernel at run
#                                  time: checked on both CPUs
#   armv7-unknown-linux-gnueabihf  runtime tests and the CLI under qemu-arm,
#                                  std built from Debian's sources
#   thumbv7em-none-eabihf          runtime without std or alloc, and the
#                                  firmware-sim/link-check image: its sizes,
#                                  and its sample on an emulated STM32F405
#                                  (qemu-system-arm), which must be golden
#   x86_64-none                    the runtime with alloc, checked for an
#                                  x86_64 that is not Linux (x86_64-unknown-
#                                  none): macOS and Windows hosts compile the
#                                  same x86_64 kernels, with the AMX tiles off
#
# Installs what is missing with apt (as root, or through sudo), builds into
# $CARGO_TARGET_DIR (default target/cross), exits non-zero on any failure.
# Settings, from the environment:
#   CROSS_TARGETS  targets to run, default "aarch64 armv7 thumbv7em x86_64-none"
#   CROSS_CLI      0 skips the pixelcnn CLI (built without ONNX, as a Pi user
#                  running .pcnn files would), default 1
#   CROSS_NICE     niceness of builds and qemu runs, default 19
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

targets=${CROSS_TARGETS:-aarch64 armv7 thumbv7em x86_64-none}
build_cli=${CROSS_CLI:-1}
nice=(nice -n "${CROSS_NICE:-19}")
out=${CARGO_TARGET_DIR:-$root/target/cross}
logs=$out/logs
mkdir -p "$logs"

want() { [[ " $targets " == *" $1 "* ]]; }

# --- packages ---------------------------------------------------------------
# Debian's rustc and cargo, the aarch64 standard library prebuilt, and the
# library sources for -Z build-std (armv7 std, thumbv7em core). The prebuilt
# armhf std is not used: adding the armhf architecture has made every
# `apt-get update` fail here (docs/cross.md).
packages=(rustc-web cargo-web rust-web-src qemu-user)
want aarch64 && packages+=(libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
want armv7 && packages+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross)
want thumbv7em && packages+=(binutils-arm-none-eabi qemu-system-arm)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "== apt: installing ${missing[*]}"
    sudo=()
    ((EUID == 0)) || sudo=(sudo)
    if want aarch64 && ! dpkg --print-foreign-architectures | grep -qx arm64; then
        "${sudo[@]}" dpkg --add-architecture arm64
    fi
    # One index that fails to download (a mirror mid-sync) makes update exit
    # 100 though the lists needed are there; the install below still fails
    # if they are not.
    "${sudo[@]}" apt-get update -qq || echo "apt-get update failed; installing from the lists there are"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- toolchain ----------------------------------------------------------------
# Debian's by path: a rustup cargo earlier on PATH has no cross targets here
# and cannot use Debian's library sources.
cargo=/usr/bin/cargo
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
echo "== $($RUSTC -V); $($cargo -V)"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc
export CARGO_TARGET_THUMBV7EM_NONE_EABIHF_LINKER=arm-none-eabi-ld
# No -L for aarch64: libstd-rust-web-dev:arm64 installs the arm64 libc in
# /lib, and adding the cross one with -L makes threaded programs spin forever.
pi4="qemu-aarch64 -cpu cortex-a72"
pi5="qemu-aarch64 -cpu cortex-a76"
armv7="qemu-arm -cpu max -L /usr/arm-linux-gnueabihf"

# Builds that need RUSTC_BOOTSTRAP (-Z build-std) and builds with other
# target flags get their own target directories: proc-macro2's build script
# reruns when RUSTC_BOOTSTRAP changes, and a rebuilt proc-macro2 rebuilds
# everything after it, so sharing one directory rebuilds the CLI every run.
stable_dir=$out/stable build_std_dir=$out/build-std

summary=()
total_passed=0

# Sums the "test result" lines of a cargo test log: prints "PASSED FAILED".
count_tests() {
    awk '/^test result:/ { for (i = 2; i <= NF; i++) {
            if ($i == "passed;") p += $(i - 1); if ($i == "failed;") f += $(i - 1) } }
         END { print p + 0, f + 0 }' "$1"
}

# Runs the runtime's tests under a qemu runner and checks the golden int8
# test passed. $1 label, $2 target, $3 runner, then `env` assignments
# (target dir, flags), then `--` and extra cargo flags.
runtime_tests() {
    local label=$1 target=$2 runner=$3
    shift 3
    local envs=()
    while (($#)) && [[ $1 != -- ]]; do envs+=("$1"); shift; done
    (($#)) && shift
    local runner_var=CARGO_TARGET_${target^^}_RUNNER
    local log=$logs/$label-test.log
    echo "== $label: pixelcnn-runtime tests under $runner"
    "${nice[@]}" env "${envs[@]}" "${runner_var//-/_}=$runner" \
        $cargo test --release -p pixelcnn-runtime --features std --target "$target" "$@" \
        2>&1 | tee "$log"
    local passed failed golden
    read -r passed failed < <(count_tests "$log")
    golden=$(grep -c '^test int8_samples_match_the_golden_hashes \.\.\. ok$' "$log" || true)
    if ((failed || passed == 0 || golden != 1)); then
        echo "$label: $passed passed, $failed failed, golden int8 test passed $golden times" >&2
        exit 1
    fi
    total_passed=$((total_passed + passed))
    summary+=("$label: runtime tests under $runner: $passed passed, 0 failed (golden_int8 ok)")
}

# Samples two images with a cross-built CLI under qemu, checks the int8
# kernel `bench` reports, and checks the PNG is the same bytes as the first
# one written (every target and kernel must draw the same pixels).
# $1 label, $2 binary, $3 runner, $4 expected kernel.
cli_check() {
    local label=$1 bin=$2 runner=$3 kernel=$4 png=$logs/$1-sample.png
    rm -f "$png"
    "${nice[@]}" $runner "$bin" sample --model models/gated-mnist-int8.pcnn \
        --count 2 --seed 3 --class 7 --out "$png"
    "${nice[@]}" $runner "$bin" bench --model models/gated-mnist-int8.pcnn --precision int8 \
        --images 1 >"$logs/$label-bench.txt"
    cat "$logs/$label-bench.txt"
    if ! grep -q "(int8, $kernel kernel)" "$logs/$label-bench.txt"; then
        echo "$label: expected the $kernel kernel" >&2
        exit 1
    fi
    first_png=${first_png:-$png}
    if ! cmp "$first_png" "$png"; then
        echo "$label: the sampled PNG differs from $first_png" >&2
        exit 1
    fi
    summary+=("$label: pixelcnn CLI under $runner: $kernel kernel, samples identical to $(basename "$first_png")")
}

if want aarch64; then
    target=aarch64-unknown-linux-gnu
    runtime_tests aarch64-pi4 $target "$pi4" CARGO_TARGET_DIR="$stable_dir"
    # The same test binaries on a Pi 5's CPU: with `std` the kernel is picked
    # at run time, so the kernel tests and the golden samples now run the
    # NEON dotprod kernel (no second build).
    runtime_tests aarch64-pi5 $target "$pi5" CARGO_TARGET_DIR="$stable_dir"
    if [[ $build_cli == 1 ]]; then
        echo "== $target: pixelcnn CLI"
        CARGO_TARGET_DIR=$stable_dir "${nice[@]}" \
            $cargo build --release -p pixelcnn-edge --bin pixelcnn --no-default-features --target $target
        bin=$stable_dir/$target/release/pixelcnn
        cli_check aarch64-pi4 "$bin" "$pi4" neon
        cli_check aarch64-pi5 "$bin" "$pi5" neon-dotprod
    fi
fi

if want armv7; then
    target=armv7-unknown-linux-gnueabihf
    runtime_tests armv7 $target "$armv7" CARGO_TARGET_DIR="$build_std_dir" RUSTC_BOOTSTRAP=1 \
        -- -Z build-std
    if [[ $build_cli == 1 ]]; then
        echo "== $target: pixelcnn CLI"
        CARGO_TARGET_DIR=$build_std_dir RUSTC_BOOTSTRAP=1 "${nice[@]}" \
            $cargo build --release -p pixelcnn-edge --bin pixelcnn --no-default-features --target $target -Z build-std
        cli_check armv7 "$build_std_dir/$target/release/pixelcnn" "$armv7" arm-dsp
    fi
fi

if want thumbv7em; then
    target=thumbv7em-none-eabihf
    export CARGO_TARGET_DIR=$build_std_dir RUSTC_BOOTSTRAP=1
    echo "== $target: pixelcnn-runtime without std or alloc"
    "${nice[@]}" $cargo build --release -p pixelcnn-runtime --no-default-features \
        --target $target -Z build-std=core
    elf=$build_std_dir/$target/release/pixelcnn-link-check
    # The same image with semihosting output, run on qemu's STM32F405 board:
    # it must sample the golden image (seed 3, class 7) of golden_int8.rs,
    # with the best kernel the target has (SMLAD) and with the generic one.
    # Under -icount shift=0 one instruction is 1 ns of virtual time, and the
    # image counts SysTick ticks of the board's 168 MHz core clock, so
    # instructions = ticks · 1e9 / 168e6 (docs/cross.md).
    golden=$(grep -oE '\(3, 7, 0x[0-9a-f_]+\)' runtime/tests/golden_int8.rs | grep -oE '0x[0-9a-f_]+')
    golden=${golden//_/}
    for features in semihosting semihosting,generic-kernel; do
        echo "== $target: firmware-sim/link-check under qemu-system-arm -M netduinoplus2 (--features $features)"
        (cd firmware-sim/link-check &&
            "${nice[@]}" $cargo build --release -Z build-std=core --features "$features")
        report=$(timeout 300 "${nice[@]}" qemu-system-arm -M netduinoplus2 -nographic -monitor none \
            -serial none -icount shift=0 -semihosting-config enable=on,target=native \
            -kernel "$elf" 2>&1 || true)
        mcu_hash=$(sed -n 's/^PCNN_IMAGE_HASH=//p' <<<"$report")
        ticks=$(sed -n 's/^PCNN_SYSTICKS=//p' <<<"$report")
        echo "image hash on the Cortex-M4: ${mcu_hash:-none}, golden: $golden"
        if [[ $mcu_hash != "$golden" ]]; then
            echo "$target: the link check did not sample the golden int8 image" >&2
            exit 1
        fi
        if [[ $ticks =~ ^[0-9]+$ ]]; then
            insns=$((ticks * 1000 / 168))
            kernel=$([[ $features == *generic-kernel* ]] && echo generic || echo best)
            echo "instructions for one digit ($kernel kernel): $insns, $((insns / 784)) per pixel"
            summary+=("$target: one digit under qemu-system-arm -icount, $kernel int8 kernel: $insns instructions, $((insns / 784)) per pixel")
        fi
    done
    # The codec on the MCU: compress the sampled digit and decompress it,
    # no heap; the image reports the stream's length.
    echo "== $target: firmware-sim/link-check compresses and decompresses its digit (--features codec)"
    (cd firmware-sim/link-check &&
        "${nice[@]}" $cargo build --release -Z build-std=core --features codec)
    report=$(timeout 300 "${nice[@]}" qemu-system-arm -M netduinoplus2 -nographic -monitor none \
        -serial none -semihosting-config enable=on,target=native -kernel "$elf" 2>&1 || true)
    codec_bytes=$(sed -n 's/^PCNN_CODEC_BYTES=//p' <<<"$report")
    if ! [[ $codec_bytes =~ ^[1-9][0-9]*$ ]]; then
        echo "$target: the link check's compress/decompress round trip failed: $report" >&2
        exit 1
    fi
    echo "the Cortex-M4 compressed its digit into $codec_bytes bytes and decompressed it exactly"
    summary+=("$target: compress + decompress of one digit under qemu-system-arm, no heap: $codec_bytes bytes, exact")
    total_passed=$((total_passed + 1))
    echo "== $target: firmware-sim/link-check (int8 model, no allocator)"
    (cd firmware-sim/link-check && "${nice[@]}" $cargo build --release -Z build-std=core)
    arm-none-eabi-size -A "$elf" >"$logs/$target-size.txt"
    grep -vE '^\.(debug|comment|ARM)' "$logs/$target-size.txt"
    # Files, not pipes into grep -q: grep's early exit would fail nm with
    # SIGPIPE under pipefail.
    arm-none-eabi-nm "$elf" >"$logs/$target-symbols.txt"
    if grep -q __rust_alloc "$logs/$target-symbols.txt"; then
        echo "$target: the link check links an allocator" >&2
        exit 1
    fi
    if ! grep -q ' PCNN_IMAGE_HASH$' "$logs/$target-symbols.txt"; then
        echo "$target: the link check's sampling was optimised away" >&2
        exit 1
    fi
    read -r flash ram < <(awk '$1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" { f += $2 }
        $1 == ".data" { f += $2; r += $2 } $1 == ".bss" { r += $2 }
        END { print f + 0, r + 0 }' "$logs/$target-size.txt")
    summary+=("$target: pixelcnn-runtime (no std, no alloc) and pixelcnn-link-check built; link check flash $flash B (.vector_table .text .rodata .data), static RAM $ram B (.data .bss); golden int8 sample under qemu-system-arm")
fi

if want x86_64-none; then
    target=x86_64-unknown-none
    export CARGO_TARGET_DIR=$build_std_dir RUSTC_BOOTSTRAP=1
    echo "== $target: pixelcnn-runtime with alloc, on an x86_64 that is not Linux (cargo check)"
    "${nice[@]}" $cargo check --release -p pixelcnn-runtime --no-default-features --features alloc \
        --target $target -Z build-std=core,alloc
    summary+=("$target: pixelcnn-runtime with alloc checked for an x86_64 that is not Linux (AMX tiles off)")
    total_passed=$((total_passed + 1))
fi

echo "== cross summary"
printf '%s\n' "${summary[@]}"
echo "cross: $total_passed passed, 0 failed"
