#!/usr/bin/env bash
# The ρ controller's disturbance scenario for real, on this machine: real inference on a rendered
# robot trajectory video, a real CPU hog (busy-loop processes started and stopped by this script),
# deadline = DEADLINE_FACTOR × the profiled ρ=1 latency. Prints miss rate, misses after the step,
# settling time and mean ρ per phase (steady, hog, steady), and whether the knob's range can absorb
# the slowdown (by how much it falls short if not). Bounded: every step runs under `timeout`.
#
#   scripts/controller_disturbance.sh                 # shipped model, 15 s phases, 3 hog processes
#   MODEL=path/to/v2.onnx PHASE_S=20 HOG=4 scripts/controller_disturbance.sh
#   BASELINE=1 scripts/controller_disturbance.sh      # also the same phases at a fixed ρ=1
#   THREADS=1 scripts/controller_disturbance.sh       # inference threads (profile and run); default 1
#
# Needs `cargo build --release` (done here if target/release/pag is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

PAG=${PAG:-target/release/pag}
MODEL=${MODEL:-models/shipped/pag_multitask.onnx}
OUT=${OUT:-target/controller_disturbance}
PHASE_S=${PHASE_S:-15}
HOG=${HOG:-3}
FPS=${FPS:-30}
DEADLINE_FACTOR=${DEADLINE_FACTOR:-1.2}
RHO_MIN=${RHO_MIN:-0.2}
LAW=${LAW:-kalman}
BASELINE=${BASELINE:-0}
# One inference thread by default: on a small machine a multi-threaded session competes with the
# hog for every core and its latency at a paced frame rate differs from the back-to-back profile.
THREADS=${THREADS:-1}

[ -x "$PAG" ] || timeout 1800 cargo build --release --bin pag
mkdir -p "$OUT"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) logical CPUs); model $MODEL"

# 1. A robot trajectory video (60 frames at 10 fps, the robot mount).
if [ ! -f "$OUT/video/000059_rgb.png" ]; then
    timeout 300 "$PAG" scenes --trajectory --mount robot --count 60 --out "$OUT/video" >/dev/null
fi

# 2. The device profile (latency vs ρ on this machine), unless one for this model exists.
sha=$(sha256sum "$MODEL" | cut -d' ' -f1)
if ! grep -q "\"sha256\": \"$sha\"" "$OUT/profile.json" 2>/dev/null \
    || ! grep -q "\"threads\": $THREADS[,}]" "$OUT/profile.json" 2>/dev/null; then
    timeout 600 "$PAG" profile --model "$MODEL" --rho-min "$RHO_MIN" --threads "$THREADS" --out "$OUT/profile.json"
fi

HOG_PIDS=()
stop_hog() {
    for pid in "${HOG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${HOG_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    HOG_PIDS=()
}
trap stop_hog EXIT

# 3. One run: pag control times the phases and reports; this script runs the hog in step.
run() {
    local label=$1; shift
    local ready="$OUT/ready.$label"
    rm -f "$ready"
    timeout $((3 * PHASE_S + 180)) "$PAG" control --model "$MODEL" --profile "$OUT/profile.json" \
        --video "$OUT/video" --fps "$FPS" --deadline-factor "$DEADLINE_FACTOR" --rho-min "$RHO_MIN" \
        --phases "steady:$PHASE_S,hog:$PHASE_S,steady:$PHASE_S" --hog-threads 0 --ready-file "$ready" --threads "$THREADS" \
        --csv "$OUT/frames.$label.csv" "$@" &
    local ctl=$!
    for _ in $(seq 1 1800); do [ -f "$ready" ] && break; sleep 0.1; done
    [ -f "$ready" ] || { echo "pag control did not start" >&2; kill "$ctl"; return 1; }
    sleep "$PHASE_S"
    for _ in $(seq 1 "$HOG"); do
        timeout $((PHASE_S + 5)) sh -c 'while :; do :; done' &
        HOG_PIDS+=($!)
    done
    sleep "$PHASE_S"
    stop_hog
    wait "$ctl"
}

echo "=== controller ($LAW), hog = $HOG busy-loop processes ==="
run controller --law "$LAW"
if [ "$BASELINE" = 1 ]; then
    echo "=== baseline: fixed ρ=1, same phases ==="
    run fixed --fixed-rho 1
fi
