#!/usr/bin/env bash
# Builds the wasmbgp daemon and the benchmark (release), then runs the benchmark.
# Extra arguments go to wasmbgp-bench (see --help). Loopback only; needs BIRD 2 (`bird`).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v bird >/dev/null || { echo "bench: BIRD 2 is missing: sudo apt-get install -y bird2 (or scripts/install-deps.sh)" >&2; exit 2; }
cargo build --release -p wasmbgp -p wasmbgp-bench
exec target/release/wasmbgp-bench "$@"
