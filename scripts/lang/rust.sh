# wasmbgp: building plugins written in Rust (source this file; bash, `set -euo pipefail` safe).
#
# Toolchain: rustup's stable Rust with the `wasm32-wasip2` target, whose cdylib output is
# already a component (no wasm-tools step). A plugin is a crate with
# `crate-type = ["cdylib"]` depending on the wasmbgp SDK (sdk/ of the wasmbgp sources),
# whose export macro picks the world.
#
# rust_tools_install
#     Adds the rustup target wasm32-wasip2 when it is missing (quiet on success). Needs
#     rustup (https://rustup.rs); a Rust without rustup must have the target already.
#
# rust_component SRC_DIR WORLD OUT
#     Builds the crate of SRC_DIR/Cargo.toml with
#     `cargo build --release --target wasm32-wasip2` (CARGO_TARGET_DIR and the other
#     cargo settings of the environment apply) and copies its cdylib, the component, to
#     OUT (e.g. target/plugins/NAME.wasm). WORLD is checked to be a world name and
#     otherwise informational: the crate's export macro decides. Compiler warnings are
#     shown; the rest of cargo's output only on failure. Run rust_tools_install first.
#
# Environment: RUST_CARGO_FLAGS (extra flags for cargo build, e.g. "--locked").

RUST_TARGET="wasm32-wasip2"

# Prints an error and fails.
_rust_die() {
    echo "rust.sh: $*" >&2
    return 1
}

# Runs a command with its output shown only when it fails.
_rust_quiet() {
    local out
    if ! out="$("$@" 2>&1)"; then
        echo "rust.sh: failed: $*" >&2
        [[ -z "$out" ]] || echo "$out" >&2
        return 1
    fi
}

# True when rustc has the standard library of $RUST_TARGET.
_rust_has_target() {
    local sysroot
    if command -v rustup >/dev/null 2>&1; then
        rustup target list --installed 2>/dev/null | grep -qx "$RUST_TARGET"
        return
    fi
    sysroot="$(rustc --print sysroot 2>/dev/null)" || return 1
    [[ -d "$sysroot/lib/rustlib/$RUST_TARGET/lib" ]]
}

rust_tools_install() {
    command -v cargo >/dev/null 2>&1 || _rust_die "cargo is needed (https://rustup.rs)" || return 1
    _rust_has_target && return 0
    command -v rustup >/dev/null 2>&1 \
        || _rust_die "the Rust target $RUST_TARGET is missing and there is no rustup to add it" || return 1
    _rust_quiet rustup target add "$RUST_TARGET" || return 1
}

# Runs in a subshell of its own (strict mode, a trap that removes temporary files).
rust_component() (
    set -euo pipefail
    [[ $# == 3 ]] || _rust_die "usage: rust_component SRC_DIR WORLD OUT"
    src="$1" world="$2" out="$3"
    [[ -f "$src/Cargo.toml" ]] || _rust_die "no $src/Cargo.toml"
    [[ "$world" =~ ^[a-z][a-z0-9-]*$ ]] || _rust_die "bad world name \"$world\""
    command -v cargo >/dev/null 2>&1 || _rust_die "cargo is needed (https://rustup.rs)"
    mkdir -p "$(dirname "$out")"
    messages="$(mktemp "${TMPDIR:-/tmp}/wasmbgp-rust.XXXXXX")"
    diagnostics="$(mktemp "${TMPDIR:-/tmp}/wasmbgp-rust.XXXXXX")"
    trap 'rm -f "$messages" "$diagnostics" "$out.tmp"' EXIT
    # shellcheck disable=SC2206 # extra flags split on spaces on purpose
    flags=(--release --target "$RUST_TARGET" --manifest-path "$src/Cargo.toml"
        --message-format=json-render-diagnostics ${RUST_CARGO_FLAGS:-})
    # JSON messages on stdout (the artifacts), rendered diagnostics on stderr.
    if ! cargo build "${flags[@]}" >"$messages" 2>"$diagnostics"; then
        echo "rust.sh: cargo build of $src failed:" >&2
        cat "$diagnostics" >&2
        exit 1
    fi
    if grep -q '^warning' "$diagnostics"; then
        # The warnings and their context, without cargo's progress lines.
        grep -v '^ *\(Compiling\|Finished\|Updating\|Locking\|Adding\|Downloading\|Downloaded\|Blocking\) ' "$diagnostics" >&2 || true
    fi
    # The cdylib's artifact message names the .wasm file (the last one: the crate itself).
    wasm="$(grep '"reason":"compiler-artifact".*"kind":\[[^]]*"cdylib"' "$messages" \
        | grep -o '"[^"]*\.wasm"' | tail -n 1 | tr -d '"')" || true
    [[ -n "$wasm" && -f "$wasm" ]] \
        || _rust_die "cargo built no .wasm for $src: is it a crate with crate-type = [\"cdylib\"]?"
    cp "$wasm" "$out.tmp"
    mv "$out.tmp" "$out"
)
