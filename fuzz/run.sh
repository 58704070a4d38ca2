#!/usr/bin/env bash
# Runs both fuzz targets for a bounded time each, one after the other:
#   fuzz/run.sh [seconds per target (default 600)] [extra libFuzzer flags...]
# Needs nightly Rust and cargo-fuzz (`cargo install cargo-fuzz`). Corpora grow in
# fuzz/corpus/<target> (seeded from fuzz/seeds/ and, for the loader, the shipped models); crash
# inputs land in fuzz/artifacts/<target>/. Each run prints libFuzzer's final stats line
# (`#<execs> DONE ...`) and the exit status; a crash stops that target's run with status 1.
# Set PAGRT_FUZZ_COUNT_KNOWN=1 to count known, reported loader panics instead of stopping
# (see fuzz/README.md).
set -uo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
mkdir -p corpus/loader corpus/message artifacts/loader artifacts/message
cp -n seeds/loader/*.onnx ../models/shipped/*.onnx corpus/loader/ 2>/dev/null || true
cp -n seeds/message/* corpus/message/ 2>/dev/null || true
cargo +nightly fuzz build -O -s none loader
cargo +nightly fuzz build -O -s none message
# An address-space limit turns a model that asks for tens of GB into a failed allocation
# (reported) instead of a swap storm or a timeout.
ulimit -v 8000000
status=0
for target in loader message; do
    max_len=$([[ $target == loader ]] && echo 1048576 || echo 65536)
    echo "== $target: ${seconds} s"
    # -fork=1 with -ignore_timeouts: a slow input is saved to artifacts/ and fuzzing goes on.
    cargo +nightly fuzz run -O -s none "$target" "corpus/$target" -- \
        -fork=1 -ignore_timeouts=1 -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=4096 \
        -timeout=10 -artifact_prefix="artifacts/$target/" "$@" 2>&1 | tee "fuzz-$target.log" |
        grep -E '^(#[0-9]+:|INFO: fuzzed|==[0-9]+==|SUMMARY|thread .* panicked|pagrt-fuzz)' | tail -n 15
    rc=${PIPESTATUS[0]}
    echo "== $target: exit status $rc"
    [[ $rc -ne 0 ]] && status=1
done
exit $status
