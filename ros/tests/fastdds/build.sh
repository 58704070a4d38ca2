#!/usr/bin/env bash
# Builds the Fast DDS peer into $1 (default: target/fastdds-peer): fastddsgen generates the
# ROS 2 message types from rosmsgs.idl, g++ compiles (no cmake needed). Needs Debian's
# libfastrtps-dev, libfastcdr-dev and fastddsgen (Fast DDS 2.9). Rebuilds only when a source
# changed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../../../target/fastdds-peer}"
mkdir -p "$out/gen"
stamp="$(cat "$here/rosmsgs.idl" "$here/peer.cpp" "$here/build.sh" | sha256sum | cut -c1-16)"
if [[ -x "$out/peer" && -f "$out/stamp" && "$(cat "$out/stamp")" == "$stamp" ]]; then
    exit 0
fi
fastddsgen -replace -d "$out/gen" "$here/rosmsgs.idl" > "$out/fastddsgen.log"
g++ -std=c++17 -O2 -o "$out/peer.tmp" -I"$out/gen" \
    "$here/peer.cpp" "$out/gen/rosmsgs.cxx" "$out/gen/rosmsgsPubSubTypes.cxx" \
    -lfastrtps -lfastcdr -lpthread
mv "$out/peer.tmp" "$out/peer"
echo "$stamp" > "$out/stamp"
