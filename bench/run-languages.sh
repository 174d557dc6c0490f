#!/usr/bin/env bash
# Builds the plugins and the per-language plugin benchmark (release), then runs it: tcp-check
# and bogon-filter in Rust, Python, JavaScript and C, in process (no daemon, no BIRD).
# Extra arguments go to target/release/languages (see --help). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh
for p in tcp-check tcp-check-py tcp-check-js tcp-check-c bogon-filter bogon-filter-py bogon-filter-js bogon-filter-c; do
  [ -f "target/plugins/$p.wasm" ] || { echo "bench: target/plugins/$p.wasm was not built by scripts/build-plugins.sh" >&2; exit 2; }
done
cargo build --release -p wasmbgp-bench --bin languages
exec target/release/languages "$@"
