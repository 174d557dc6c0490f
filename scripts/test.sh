#!/usr/bin/env bash
# Runs the whole wasmbgp test suite on a fresh machine: installs what is missing
# (Debian peers, the wasm32-wasip2 target, the Python, JavaScript and C plugin toolchains,
# cargo-afl), builds the daemon and the plugins, fuzzes the parsers and the BGP codec for a minute,
# then runs every test. Quiet on success; the test runner's summary is printed last. Logs of each step: target/test-logs/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
logs=target/test-logs
mkdir -p "$logs"

step() {
    local name=$1
    shift
    if ! "$@" >"$logs/$name.log" 2>&1; then
        echo "test.sh: step '$name' failed: $*" >&2
        tail -n 60 "$logs/$name.log" >&2
        exit 1
    fi
}

step install-deps scripts/install-deps.sh
step build-plugins scripts/build-plugins.sh
step build cargo build --release --locked --workspace --all-targets
# The guest workspace's pure code (SDK text and route helpers, the policies' logic), natively.
step plugin-unit-tests cargo test --release --locked --manifest-path plugins/Cargo.toml \
    --target-dir target/sdk-host --workspace
step python-plugin-tests python3 -m unittest discover -s plugins/bogon-filter-py -p 'test_*.py' </dev/null
step js-plugin-tests node --test plugins/bogon-filter-js/test_bogons.mjs
step c-plugin-tests bash -c 'clang -O2 -Wall -Wextra -Werror -I plugins/bogon-filter-c plugins/bogon-filter-c/bogons.c \
    plugins/bogon-filter-c/tests/test_bogons.c -o target/test-bogons-c && target/test-bogons-c >/dev/null'
# A minute of coverage-guided fuzzing over the text parsers, the BGP codec and the
# session machine (fuzz/README.md).
step fuzz-smoke fuzz/run.sh smoke 60
if ! command -v cargo-nextest >/dev/null 2>&1; then
    step install-nextest cargo install --locked cargo-nextest
fi
exec cargo nextest run --release --locked --workspace --no-fail-fast \
    --status-level fail --final-status-level fail --hide-progress-bar 2>&1
