#!/usr/bin/env bash
# Builds {{name}}.wasm and runs it with `wasmbgp plugin test` on the events of
# test/events.txt; the metrics it ends with must be those of test/expected.txt.
# Set WASMBGP to test with another wasmbgp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
WASMBGP="${WASMBGP:-{{wasmbgp}}}"
./build.sh

output="$(mktemp)"
trap 'rm -f "$output"' EXIT
status=0
"$WASMBGP" plugin test {{name}}.wasm --world exporter --events test/events.txt >"$output" || status=$?
cat "$output"
if [[ $status != 0 ]]; then
    echo "test.sh: FAILED: wasmbgp plugin test exited with status $status" >&2
    exit 1
fi
if ! grep '^metric ' "$output" | diff -u test/expected.txt - >&2; then
    echo "test.sh: FAILED: the metrics differ from test/expected.txt (-: expected, +: got)" >&2
    exit 1
fi
echo "test.sh: ok"
