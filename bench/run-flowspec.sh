#!/usr/bin/env bash
# Builds the wasmbgp daemon and the FlowSpec benchmark (release), then runs it.
# Extra arguments go to wasmbgp-bench-flowspec (see --help), e.g. --runs 1, --rules 10000,
# --family ipv4, --no-bird. Loopback only (127.82.0.1-4); needs BIRD 2 (bird, birdc).
set -euo pipefail
cd "$(dirname "$0")/.."
for b in bird birdc; do
  command -v "$b" >/dev/null || { echo "bench: $b (BIRD 2) is missing: sudo apt-get install -y bird2 (or scripts/install-deps.sh)" >&2; exit 2; }
done
cargo build --release -p wasmbgp -p wasmbgp-bench
exec target/release/wasmbgp-bench-flowspec "$@"
