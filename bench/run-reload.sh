#!/usr/bin/env bash
# Builds the wasmbgp daemon, the plugins and the reload benchmark (release), then runs it.
# Extra arguments go to wasmbgp-bench-reload (see --help), e.g. --runs 1, --no-python,
# --only-config, --routes 100000. Loopback only; needs BIRD 2.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v bird >/dev/null || { echo "bench: BIRD 2 is missing: sudo apt-get install -y bird2 (or scripts/install-deps.sh)" >&2; exit 2; }
scripts/build-plugins.sh
for p in tcp-check tcp-check-py; do
  [ -f "target/plugins/$p.wasm" ] || { echo "bench: target/plugins/$p.wasm was not built by scripts/build-plugins.sh" >&2; exit 2; }
done
cargo build --release -p wasmbgp -p wasmbgp-bench
exec target/release/wasmbgp-bench-reload "$@"
