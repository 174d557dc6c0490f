#!/usr/bin/env bash
# Builds the wasmbgp daemon, the plugins and the policy benchmark (release), then runs it.
# Extra arguments go to wasmbgp-bench-policy (see --help). Loopback only; needs BIRD 2.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v bird >/dev/null || { echo "bench: BIRD 2 is missing: sudo apt-get install -y bird2 (or scripts/install-deps.sh)" >&2; exit 2; }
scripts/build-plugins.sh
for p in community-tagger bogon-filter bogon-filter-py; do
  [ -f "target/plugins/$p.wasm" ] || { echo "bench: target/plugins/$p.wasm was not built by scripts/build-plugins.sh" >&2; exit 2; }
done
cargo build --release -p wasmbgp -p wasmbgp-bench
exec target/release/wasmbgp-bench-policy "$@"
