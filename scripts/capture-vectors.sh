#!/usr/bin/env bash
# Captures the BGP messages real peers (BIRD 2, GoBGP) send and writes them as codec test
# vectors under host/bgp/tests/vectors/<peer>/ (read by host/bgp/tests/peer_vectors.rs,
# and seeds for fuzzing). Needs bird, birdc, gobgpd, gobgp and root (one session runs in
# network namespaces); uses test blocks 50-53 (127.0.50.0/24 ... 127.0.53.0/24).
# Usage: scripts/capture-vectors.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for tool in bird birdc gobgpd gobgp ip; do
    command -v "$tool" >/dev/null || { echo "capture-vectors.sh: $tool not found" >&2; exit 1; }
done
cargo build --release --locked -p wasmbgp-e2e --bin capture-vectors
exec "${CARGO_TARGET_DIR:-target}/release/capture-vectors" "$@"
