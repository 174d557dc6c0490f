#!/usr/bin/env bash
# Builds the wasmbgp daemon and the sessions benchmark (release), then runs it.
# Extra arguments go to wasmbgp-bench-sessions (see --help), e.g. --sessions 50,
# --hold-window 20, --no-bird. Loopback only (127.91.0.0/16); needs BIRD 2 (bird, birdc).
# About 25 minutes with the defaults (1,000 sessions, two 600 s windows).
set -euo pipefail
cd "$(dirname "$0")/.."
for b in bird birdc; do
  command -v "$b" >/dev/null || { echo "bench: $b (BIRD 2) is missing: sudo apt-get install -y bird2 (or scripts/install-deps.sh)" >&2; exit 2; }
done
cargo build --release -p wasmbgp -p wasmbgp-bench
exec target/release/wasmbgp-bench-sessions "$@"
