#!/usr/bin/env bash
# Builds every wasmbgp plugin and runtime test fixture as a WebAssembly
# component (wasm32-wasip2) and places them at target/plugins/NAME.wasm:
#
#   target/plugins/tcp-check.wasm          plugins/tcp-check          (Rust, healthcheck)
#   target/plugins/http-check.wasm         plugins/http-check         (Rust, healthcheck)
#   target/plugins/dns-check.wasm          plugins/dns-check          (Rust, healthcheck)
#   target/plugins/community-tagger.wasm   plugins/community-tagger   (Rust, policy)
#   target/plugins/bogon-filter.wasm       plugins/bogon-filter       (Rust, policy)
#   target/plugins/as-path-filter.wasm     plugins/as-path-filter     (Rust, policy)
#   target/plugins/rpki-rov.wasm           plugins/rpki-rov           (Rust, policy)
#   target/plugins/route-stats.wasm        plugins/route-stats        (Rust, exporter)
#   target/plugins/webhook-alert.wasm      plugins/webhook-alert      (Rust, exporter)
#   target/plugins/exabgp-json.wasm        plugins/exabgp-json        (Rust, exporter)
#   target/plugins/bmp.wasm                plugins/bmp                (Rust, exporter)
#   target/plugins/ddos-flowspec.wasm      plugins/ddos-flowspec      (Rust, healthcheck)
#   target/plugins/tcp-check-py.wasm       plugins/tcp-check-py       (Python, healthcheck)
#   target/plugins/bogon-filter-py.wasm    plugins/bogon-filter-py    (Python, policy)
#   target/plugins/tcp-check-js.wasm       plugins/tcp-check-js       (JavaScript, healthcheck)
#   target/plugins/bogon-filter-js.wasm    plugins/bogon-filter-js    (JavaScript, policy)
#   target/plugins/route-stats-js.wasm     plugins/route-stats-js     (JavaScript, exporter)
#   target/plugins/tcp-check-c.wasm        plugins/tcp-check-c        (C, healthcheck)
#   target/plugins/bogon-filter-c.wasm     plugins/bogon-filter-c     (C, policy)
#   target/plugins/fixture-faulty.wasm     tests/fixtures/plugins/faulty          (Rust, healthcheck)
#   target/plugins/fixture-policy.wasm     tests/fixtures/plugins/fixture-policy  (Rust, policy)
#   target/plugins/fixture-exporter.wasm   tests/fixtures/plugins/fixture-exporter (Rust, exporter)
#   target/plugins/fixture-versioned-check-v1.wasm  tests/fixtures/plugins/versioned/check-v1  (Rust, healthcheck; v1 and v2 built from versioned/check.rs)
#   target/plugins/fixture-versioned-check-v2.wasm  tests/fixtures/plugins/versioned/check-v2  (Rust, healthcheck; v1 and v2 built from versioned/check.rs)
#   target/plugins/fixture-versioned-policy-v1.wasm  tests/fixtures/plugins/versioned/policy-v1  (Rust, policy; v1 and v2 built from versioned/policy.rs)
#   target/plugins/fixture-versioned-policy-v2.wasm  tests/fixtures/plugins/versioned/policy-v2  (Rust, policy; v1 and v2 built from versioned/policy.rs)
#
# The Rust crates are members of the cargo workspace plugins/Cargo.toml; each
# one listed in RUST_PLUGINS below must be there. Every directory plugins/NAME-py
# (Python: componentize-py, module `app`), plugins/NAME-js (JavaScript:
# componentize-qjs, `app.js`) and plugins/NAME-c (C: clang and wasi-libc,
# `wit-bindgen c`, `wasm-tools component new`, `*.c`) names its WIT world in the
# one-word file `world`; scripts/lang/LANG.sh builds it.
#
# Installs what is missing (the rustup target; componentize-py, componentize-qjs,
# wit-bindgen-cli, wasm-tools and the WASI adapter under target/tools; Debian's
# clang, lld and wasi-libc), rebuilds only what changed, and prints nothing on
# success.
# Usage: scripts/build-plugins.sh [--verbose] [--languages rust,python,js,c] (default: all;
# the Rust crates, fixtures included, are always built)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/target/plugins"
# The Rust crates whose components are copied to target/plugins/ (cargo names
# the file after the crate, with '_' for '-').
RUST_PLUGINS=(
    tcp-check http-check dns-check
    community-tagger bogon-filter as-path-filter rpki-rov
    route-stats webhook-alert exabgp-json bmp ddos-flowspec
    fixture-faulty fixture-policy fixture-exporter
    fixture-versioned-check-v1 fixture-versioned-check-v2
    fixture-versioned-policy-v1 fixture-versioned-policy-v2
)
VERBOSE=0
LANGUAGES="rust,python,js,c"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --verbose) VERBOSE=1 ;;
        --languages) LANGUAGES="${2:?--languages needs a list such as rust,python}"; shift ;;
        *) echo "build-plugins: unknown argument $1 (usage: $0 [--verbose] [--languages rust,python,js,c])" >&2; exit 2 ;;
    esac
    shift
done
wanted() { [[ ",$LANGUAGES," == *",$1,"* ]]; }

log() { if [[ $VERBOSE == 1 ]]; then echo "build-plugins: $*" >&2; fi; }
die() { echo "build-plugins: $*" >&2; exit 1; }

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
for crate in "${RUST_PLUGINS[@]}"; do
    src="$ROOT/target/wasm32-wasip2/release/${crate//-/_}.wasm"
    [[ -f "$src" ]] || die "cargo built no ${src#"$ROOT"/}: is crate $crate a member of plugins/Cargo.toml?"
    if ! cmp -s "$src" "$OUT/$crate.wasm" 2>/dev/null; then
        cp "$src" "$OUT/$crate.wasm.tmp" && mv "$OUT/$crate.wasm.tmp" "$OUT/$crate.wasm"
    fi
done

# 2. Python, JavaScript and C guests: every directory plugins/NAME-py, NAME-js or
#    NAME-c, built by its language's toolchain script (scripts/lang/LANG.sh, the same
#    files `wasmbgp plugin new` puts in a project), tools installed under target/tools.
export WASMBGP_TOOLS="$ROOT/target/tools"
declare -A LANG_OF=([py]=python [js]=js [c]=c)
declare -A TOOLS_READY=()
for dir in "$ROOT"/plugins/*-py "$ROOT"/plugins/*-js "$ROOT"/plugins/*-c; do
    [[ -d "$dir" ]] || continue
    name="$(basename "$dir")"
    lang="${LANG_OF[${name##*-}]}"
    wanted "$lang" || continue
    out="$OUT/$name.wasm"
    # The plugin's WIT world, from its `world` file (e.g. "healthcheck").
    [[ -f "$dir/world" ]] || die "plugins/$name/world is missing: write the plugin's WIT world there (healthcheck, policy, exporter)"
    world="$(tr -d '[:space:]' < "$dir/world")"
    [[ "$world" =~ ^[a-z][a-z0-9-]*$ ]] && grep -qE "^world $world[[:space:]]*\{" "$ROOT"/wit/*.wit \
        || die "plugins/$name/world: no world \"$world\" in wit/"
    # Rebuild when any input (the sources, the world file, the WIT, the toolchain
    # script) is newer than the output.
    if [[ -f "$out" ]] && [[ -z "$(find "$dir" "$ROOT/wit" "$ROOT/scripts/lang/$lang.sh" -newer "$out" -type f \
            -not -path '*/__pycache__/*' -not -path '*/build/*' -not -name '*.wasm' | head -1)" ]]; then
        continue
    fi
    # shellcheck source=/dev/null
    source "$ROOT/scripts/lang/$lang.sh"
    if [[ -z "${TOOLS_READY[$lang]:-}" ]]; then
        log "installing the $lang toolchain (if missing) under $WASMBGP_TOOLS"
        "${lang}_tools_install"
        TOOLS_READY[$lang]=1
    fi
    log "$lang: $name (world $world)"
    "${lang}_component" "$dir" "$ROOT/wit" "$world" "$out"
done
