#!/usr/bin/env bash
# Builds the wasmbgp daemon, the plugins (route-stats among them) and the exporter
# benchmark (release), then runs it. Extra arguments go to the benchmark (see --help),
# e.g. --runs 3, --routes 100000, --perf /tmp/exporter-perf.txt. Loopback only; needs BIRD 2.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v bird >/dev/null || { echo "bench: BIRD 2 is missing: sudo apt-get install -y bird2 (or scripts/install-deps.sh)" >&2; exit 2; }
scripts/build-plugins.sh
[ -f target/plugins/route-stats.wasm ] || { echo "bench: target/plugins/route-stats.wasm was not built by scripts/build-plugins.sh" >&2; exit 2; }
cargo build --quiet --release -p wasmbgp -p wasmbgp-bench
# src/bin/exporter.rs is found by cargo's target auto-discovery: the binary is `exporter`.
exec target/release/exporter "$@"
