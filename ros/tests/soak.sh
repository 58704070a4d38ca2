#!/usr/bin/env bash
# The long soak: the node on its synthetic camera (asked for 60 Hz: it processes as fast as it
# can and drops the rest) for FRAMES processed frames (default 20000), every output subscribed
# by a peer (reliable keep-last-10 readers), the node's RSS printed at intervals, and the RSS
# growth after warm-up at the end. Fails if the RSS floor grew by 3 % or more.
#   ros/tests/soak.sh [frames]
set -euo pipefail
cd "$(dirname "$0")/../.."
frames=${1:-20000}
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
PAGRT_SOAK_FRAMES=$frames cargo test --release -p pag-ros --test soak -- --nocapture 2>&1 |
    grep --line-buffered -vE '^\s*$|^running|^test result|Running|Finished|Compiling'
