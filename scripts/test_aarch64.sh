#!/usr/bin/env bash
# Cross-builds pagrt's kernel and whole-model tests for aarch64 (the Jetson Orin's CPU
# architecture) and runs them under qemu-user on an emulated CPU: the NEON kernel table, the
# portable table, tract-linalg's arm64 int8 kernels (SDOT where the CPU model has dot-product
# int8) and the goldens against onnxruntime's recordings. Correctness only: an emulator says
# nothing about speed.
#
#   scripts/test_aarch64.sh                 # Cortex-A76 (dot-product int8, no i8mm: like the Orin's A78AE)
#   QEMU_CPUS="cortex-a76 cortex-a53 max" scripts/test_aarch64.sh
#
# Needs (installed here when missing, as root or with sudo): Debian's gcc-aarch64-linux-gnu and
# qemu-user, and rustup's aarch64-unknown-linux-gnu standard library. The first build takes
# ~25 min on 2 cores (tract for a second target); later ones reuse target/aarch64-unknown-linux-gnu.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=aarch64-unknown-linux-gnu
CPUS=${QEMU_CPUS:-cortex-a76}

if ! command -v aarch64-linux-gnu-gcc > /dev/null || ! command -v qemu-aarch64 > /dev/null; then
    sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user > /dev/null
fi
if ! rustup target list --installed | grep -qx "$TARGET"; then
    rustup target add "$TARGET"
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
TESTS=(--test golden --test sparse_model --test int8_model --test legacy_v1 --test loader_regressions
       --test allocations --test telemetry --test sparse_extract)

echo "== build (release, $TARGET)"
cargo test --release --target "$TARGET" -p pag-runtime --lib --no-run
cargo test --release --target "$TARGET" -p pagrt "${TESTS[@]}" --no-run

for cpu in $CPUS; do
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu $cpu"
    echo "== $cpu: kernel property tests (every table and int8 kernel this CPU model runs)"
    cargo test --release --target "$TARGET" -p pag-runtime --lib
    echo "== $cpu: whole-model tests on the best table"
    # Two tests start an aarch64 child process, which qemu-user cannot exec without binfmt_misc:
    # the every-table test (its child's work runs directly below) and the CLI's ponder map (the
    # `pag` binary; run it by hand: qemu-aarch64 … target/$TARGET/release/pag run --ponder …).
    cargo test --release --target "$TARGET" -p pagrt "${TESTS[@]}" -- \
        --skip sparse_execution_matches_onnxruntime_on_every_kernel_table --skip cli_writes_ponder_map
    echo "== $cpu: goldens on the portable table (the best one, neon, ran above)"
    PAGRT_CPU_ISA=portable cargo test --release --target "$TARGET" -p pagrt --test sparse_model \
        sparse_execution_matches_onnxruntime_within_1e4 -- --exact
done
echo "== aarch64: all passed"
