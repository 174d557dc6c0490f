#!/usr/bin/env bash
# Builds the wasmbgp daemon, the plugins and the plugin benchmark (release), then runs it.
# Extra arguments go to wasmbgp-bench-plugins (see --help). Loopback only; needs BIRD 2.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v bird >/dev/null || { echo "bench: BIRD 2 is missing: sudo apt-get install -y bird2 (or scripts/install-deps.sh)" >&2; exit 2; }
[ -f target/plugins/tcp-check.wasm ] && [ -f target/plugins/tcp-check-py.wasm ] && [ -f target/plugins/fixture-faulty.wasm ] \
  || scripts/build-plugins.sh
cargo build --release -p wasmbgp -p wasmbgp-bench
exec target/release/wasmbgp-bench-plugins "$@"
