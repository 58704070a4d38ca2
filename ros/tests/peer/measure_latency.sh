#!/usr/bin/env bash
# Measures, at 320×240, the time from a camera image published by a Cyclone DDS peer to all of
# the node's outputs received by that peer, minus the node's inference time (from the node's
# per-frame `frame_timing`). Usage: ros/tests/peer/measure_latency.sh [frames] [extra node args]
# Cyclone is restricted to the loopback interface: RustDDS then uses the loopback MTU (64 KiB
# datagrams) for this same-host peer instead of 1452-byte datagrams (see ros/README.md).
set -euo pipefail
cd "$(dirname "$0")/../../.."
frames=${1:-200}; shift || true
domain=${ROS_DOMAIN_ID:-97}
cargo build --release -p pag-ros
export CYCLONEDDS_URI=${CYCLONEDDS_URI:-'<CycloneDDS><Domain><General><Interfaces><NetworkInterface name="lo" multicast="true"/></Interfaces><AllowMulticast>true</AllowMulticast></General></Domain></CycloneDDS>'}
target=${CARGO_TARGET_DIR:-target}
"$target/release/pag-ros" --timing --domain-id "$domain" "$@" 2>/dev/null &
node=$!
trap 'kill $node' EXIT
python3 ros/tests/peer/peer.py latency --domain "$domain" --frames "$frames"
