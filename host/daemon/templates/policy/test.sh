#!/usr/bin/env bash
# Builds {{name}}.wasm and runs it with `wasmbgp plugin test` on the routes of
# test/routes.txt; its verdicts must be those of test/expected.txt. Set WASMBGP to
# test with another wasmbgp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
WASMBGP="${WASMBGP:-{{wasmbgp}}}"
./build.sh

actual="$(mktemp)"
trap 'rm -f "$actual"' EXIT
status=0
"$WASMBGP" plugin test {{name}}.wasm --world policy --routes test/routes.txt \
    --setting max-length=24 --setting community=65000:100 >"$actual" || status=$?
cat "$actual"
if [[ $status != 0 ]]; then
    echo "test.sh: FAILED: wasmbgp plugin test exited with status $status" >&2
    exit 1
fi
if ! diff -u test/expected.txt "$actual" >&2; then
    echo "test.sh: FAILED: the verdicts differ from test/expected.txt (-: expected, +: got)" >&2
    exit 1
fi
echo "test.sh: ok"
