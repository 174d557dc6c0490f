#!/usr/bin/env bash
# Builds every wasmbgp plugin and runtime test fixture as a WebAssembly
# component (wasm32-wasip2) and places them at target/plugins/NAME.wasm:
#
#   target/plugins/tcp-check.wasm      plugins/tcp-check     (Rust)
#   target/plugins/http-check.wasm     plugins/http-check    (Rust)
#   target/plugins/dns-check.wasm      plugins/dns-check     (Rust)
#   target/plugins/tcp-check-py.wasm   plugins/tcp-check-py  (Python, componentize-py)
#   target/plugins/fixture-faulty.wasm tests/fixtures/plugins/faulty (Rust)
#
# Installs what is missing (the rustup target, componentize-py in a venv at
# target/pyvenv), rebuilds only what changed, and prints nothing on success.
# Usage: scripts/build-plugins.sh [--verbose]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/target/plugins"
VENV="$ROOT/target/pyvenv"
COMPONENTIZE_PY_VERSION="0.25.1"
VERBOSE=0
[[ "${1:-}" == "--verbose" ]] && VERBOSE=1

log() { if [[ $VERBOSE == 1 ]]; then echo "build-plugins: $*" >&2; fi; }

# Runs a command; its output is shown only when it fails (or with --verbose).
quiet() {
    local out
    if [[ $VERBOSE == 1 ]]; then "$@"; return; fi
    if ! out="$("$@" 2>&1)"; then
        echo "build-plugins: failed: $*" >&2
        echo "$out" >&2
        return 1
    fi
}

mkdir -p "$OUT"
# Concurrent runs (parallel test processes) take turns.
exec 9>"$OUT/.lock"
flock 9

# 1. Rust guests (one cargo workspace in plugins/, sharing the root target/).
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    log "adding rustup target wasm32-wasip2"
    quiet rustup target add wasm32-wasip2
fi
log "cargo build (plugins workspace)"
quiet cargo build --release --locked --manifest-path "$ROOT/plugins/Cargo.toml" \
    --target wasm32-wasip2 --target-dir "$ROOT/target"
for crate in tcp-check http-check dns-check fixture-faulty; do
    src="$ROOT/target/wasm32-wasip2/release/${crate//-/_}.wasm"
    if ! cmp -s "$src" "$OUT/$crate.wasm" 2>/dev/null; then
        cp "$src" "$OUT/$crate.wasm.tmp" && mv "$OUT/$crate.wasm.tmp" "$OUT/$crate.wasm"
    fi
done

# 2. Python guests (componentize-py from PyPI, in a private venv).
if ! "$VENV/bin/componentize-py" --version 2>/dev/null | grep -q "$COMPONENTIZE_PY_VERSION"; then
    log "installing componentize-py $COMPONENTIZE_PY_VERSION into $VENV"
    quiet python3 -m venv "$VENV"
    quiet "$VENV/bin/pip" install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION"
fi
for dir in "$ROOT"/plugins/*-py; do
    name="$(basename "$dir")"
    out="$OUT/$name.wasm"
    # Rebuild when any input (the app or the WIT) is newer than the output.
    if [[ -f "$out" ]] && [[ -z "$(find "$dir" "$ROOT/wit" -newer "$out" -type f -not -path '*/__pycache__/*' | head -1)" ]]; then
        continue
    fi
    log "componentize-py $name"
    quiet "$VENV/bin/componentize-py" -d "$ROOT/wit" -w healthcheck componentize \
        -p "$dir" app -o "$out.tmp"
    mv "$out.tmp" "$out"
done
