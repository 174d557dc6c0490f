# wasmbgp: building plugins written in C (source this file; bash, `set -euo pipefail` safe).
#
# Toolchain: Debian's clang, lld and wasi-libc (a wasm32-wasi, WASI preview 1 sysroot)
# compile the C; `wit-bindgen c` (crate wit-bindgen-cli) writes the bindings of a WIT
# world; `wasm-tools component new` turns the core module into a component, adapting
# its WASI preview 1 imports with the reactor adapter of wasmtime (crate
# wasi-preview1-component-adapter-provider). Everything but the apt packages lives
# under "$WASMBGP_TOOLS/c" (WASMBGP_TOOLS must be set).
#
# c_tools_install
#     Installs what is missing, and nothing else (quiet on success): the apt packages
#     clang, lld, wasi-libc and libclang-rt-dev-wasm32 (compiler builtins), with sudo
#     when not root; wit-bindgen-cli and wasm-tools at the versions pinned below
#     (`cargo install --locked --root "$WASMBGP_TOOLS/c"`, again when another version
#     is there); and the reactor adapter, written to
#     "$WASMBGP_TOOLS/c/wasi_snapshot_preview1.reactor.wasm" by a throwaway cargo
#     program in "$WASMBGP_TOOLS/c/adapter-src" (the crate only holds the bytes).
#
# c_component SRC_DIR WIT_DIR WORLD OUT
#     Builds the component OUT (e.g. target/plugins/NAME.wasm) from every SRC_DIR/*.c
#     (headers in SRC_DIR are found) for the world WORLD of the WIT package in WIT_DIR:
#     bindings by `wit-bindgen c` into a temporary build directory (the sources stay
#     clean; include "WORLD.h", with '-' as '_'), compiled with
#     `clang --target=wasm32-wasi -mexec-model=reactor -O2`, linked with the bindings'
#     WORLD_component_type.o (which embeds the WIT world, so no `component embed` is
#     needed; DWARF stripped unless C_CFLAGS has -g), then `wasm-tools component new
#     --adapt` to OUT.tmp, validated and moved to OUT. Compiler warnings (-Wall -Wextra)
#     of SRC_DIR's files are shown; other output only on failure. Only SRC_DIR/*.c is
#     compiled: keep native tests in a subdirectory. Run c_tools_install first.
#
# Environment: WASMBGP_TOOLS (required); C_WASI_SYSROOT (default /usr: Debian's
# wasi-libc is /usr/include/wasm32-wasi and /usr/lib/wasm32-wasi); C_CFLAGS (extra
# flags for clang, e.g. "-g" or "-DNDEBUG").

# Pinned versions. wit-bindgen-cli 0.57.1 is the wit-bindgen of the Rust plugins; its
# C output builds with clang 14. wasm-tools 1.254.2 shares wasmparser/wit-component
# 0.254 with the host (wasmtime 48.0.8), so what it writes is what the host reads. The
# adapter's version is the host's wasmtime version.
C_WIT_BINDGEN_VERSION="0.57.1"
C_WASM_TOOLS_VERSION="1.254.2"
C_ADAPTER_VERSION="48.0.8"
C_APT_PACKAGES=(clang lld wasi-libc libclang-rt-dev-wasm32)

# Prints an error and fails.
_c_die() {
    echo "c.sh: $*" >&2
    return 1
}

# Runs a command with its output shown only when it fails.
_c_quiet() {
    local out
    if ! out="$("$@" 2>&1)"; then
        echo "c.sh: failed: $*" >&2
        [[ -z "$out" ]] || echo "$out" >&2
        return 1
    fi
}

# The tools directory ("$WASMBGP_TOOLS/c"), created.
_c_tools_dir() {
    [[ -n "${WASMBGP_TOOLS:-}" ]] || _c_die "WASMBGP_TOOLS is not set (the directory for build tools)" || return 1
    mkdir -p "$WASMBGP_TOOLS/c" || return 1
    (cd "$WASMBGP_TOOLS/c" && pwd)
}

_c_sysroot() {
    echo "${C_WASI_SYSROOT:-/usr}"
}

# The apt packages whose files are missing (one per line).
_c_missing_packages() {
    local sysroot resource
    sysroot="$(_c_sysroot)"
    command -v clang >/dev/null 2>&1 || echo clang
    command -v wasm-ld >/dev/null 2>&1 || echo lld
    [[ -f "$sysroot/lib/wasm32-wasi/libc.a" && -f "$sysroot/include/wasm32-wasi/stdlib.h" ]] || echo wasi-libc
    if command -v clang >/dev/null 2>&1; then
        resource="$(clang -print-resource-dir 2>/dev/null || true)"
        [[ -n "$resource" && -f "$resource/lib/wasi/libclang_rt.builtins-wasm32.a" ]] || echo libclang-rt-dev-wasm32
    else
        echo libclang-rt-dev-wasm32
    fi
}

_c_install_apt() {
    local missing sudo=()
    missing="$(_c_missing_packages)"
    [[ -n "$missing" ]] || return 0
    # shellcheck disable=SC2206 # one package name per word
    local packages=($missing)
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null 2>&1 || _c_die "need the apt packages ${packages[*]} (not root and no sudo)" || return 1
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 || _c_die "need ${packages[*]} (clang, lld, wasi-libc, compiler-rt builtins for wasm32) and found no apt-get" || return 1
    _c_quiet "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
    _c_quiet "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" || return 1
    missing="$(_c_missing_packages)"
    [[ -z "$missing" ]] || _c_die "still missing after apt-get install: $(echo $missing)" || return 1
}

# Installs crate $2 at version $3 (features $4) unless "$1 --version" says so already.
_c_install_crate() {
    local bin="$1" crate="$2" version="$3" features="$4" root
    root="$(_c_tools_dir)" || return 1
    if [[ -x "$root/bin/$bin" ]] && "$root/bin/$bin" --version 2>/dev/null | grep -qw -- "$version"; then
        return 0
    fi
    command -v cargo >/dev/null 2>&1 || _c_die "cargo is needed to install $crate (https://rustup.rs)" || return 1
    _c_quiet cargo install --quiet --locked --force --root "$root" \
        --no-default-features --features "$features" "$crate@$version" || return 1
    "$root/bin/$bin" --version 2>/dev/null | grep -qw -- "$version" \
        || _c_die "$root/bin/$bin is not version $version after cargo install" || return 1
}

_c_install_adapter() {
    local root src out stamp
    root="$(_c_tools_dir)" || return 1
    out="$root/wasi_snapshot_preview1.reactor.wasm"
    stamp="$out.version"
    if [[ -f "$out" && -f "$stamp" && "$(cat "$stamp")" == "$C_ADAPTER_VERSION" ]]; then
        return 0
    fi
    command -v cargo >/dev/null 2>&1 || _c_die "cargo is needed to fetch the WASI adapter" || return 1
    src="$root/adapter-src"
    mkdir -p "$src/src" || return 1
    cat >"$src/Cargo.toml" <<EOF
[package]
name = "write-adapter"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
wasi-preview1-component-adapter-provider = "=$C_ADAPTER_VERSION"

[workspace]
EOF
    cat >"$src/src/main.rs" <<'EOF'
//! Writes wasmtime's WASI preview 1 reactor adapter to the path given.
fn main() {
    let path = std::env::args().nth(1).expect("usage: write-adapter OUT");
    std::fs::write(
        &path,
        wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    )
    .expect("writing the adapter");
}
EOF
    _c_quiet cargo run --quiet --release --manifest-path "$src/Cargo.toml" \
        --target-dir "$src/target" -- "$out.tmp" || return 1
    mv "$out.tmp" "$out" && echo "$C_ADAPTER_VERSION" >"$stamp"
}

c_tools_install() {
    _c_tools_dir >/dev/null || return 1
    _c_install_apt || return 1
    _c_install_crate wit-bindgen wit-bindgen-cli "$C_WIT_BINDGEN_VERSION" c || return 1
    _c_install_crate wasm-tools wasm-tools "$C_WASM_TOOLS_VERSION" component,validate,print || return 1
    _c_install_adapter || return 1
}

# Runs in a subshell of its own (strict mode, a trap that removes the build directory).
c_component() (
    set -euo pipefail
    export RUST_BACKTRACE=0  # errors of wit-bindgen and wasm-tools without a backtrace
    [[ $# == 4 ]] || _c_die "usage: c_component SRC_DIR WIT_DIR WORLD OUT"
    src="$1" wit="$2" world="$3" out="$4"
    [[ -d "$src" ]] || _c_die "no source directory $src"
    [[ -d "$wit" ]] || _c_die "no WIT directory $wit"
    [[ "$world" =~ ^[a-z][a-z0-9-]*$ ]] || _c_die "bad world name \"$world\""
    tools="$(_c_tools_dir)"
    bindgen="$tools/bin/wit-bindgen" wasm_tools="$tools/bin/wasm-tools"
    adapter="$tools/wasi_snapshot_preview1.reactor.wasm"
    for tool in "$bindgen" "$wasm_tools" "$adapter"; do
        [[ -e "$tool" ]] || _c_die "$tool is missing: run c_tools_install first"
    done
    shopt -s nullglob
    sources=("$src"/*.c)
    [[ ${#sources[@]} -gt 0 ]] || _c_die "no .c files in $src"
    src="$(cd "$src" && pwd)"
    mkdir -p "$(dirname "$out")"

    build="$(mktemp -d "${TMPDIR:-/tmp}/wasmbgp-c.XXXXXX")"
    trap 'rm -rf "$build" "$out.tmp"' EXIT
    _c_quiet "$bindgen" c --world "$world" --out-dir "$build/bindings" "$wit"
    stem="${world//-/_}"
    [[ -f "$build/bindings/$stem.c" && -f "$build/bindings/${stem}_component_type.o" ]] \
        || _c_die "wit-bindgen wrote no $stem.c / ${stem}_component_type.o"

    # shellcheck disable=SC2206 # extra flags split on spaces on purpose
    cflags=(--target=wasm32-wasi "--sysroot=$(_c_sysroot)" -O2
        -I "$build/bindings" -I "$src" ${C_CFLAGS:-})
    objects=("$build/bindings/${stem}_component_type.o")
    _c_quiet clang "${cflags[@]}" -c "$build/bindings/$stem.c" -o "$build/bindings.o"
    objects+=("$build/bindings.o")
    for file in "${sources[@]}"; do
        name="$(basename "$file" .c)"
        if ! diagnostics="$(clang "${cflags[@]}" -Wall -Wextra -c "$file" -o "$build/src-$name.o" 2>&1)"; then
            echo "c.sh: compiling $file failed:" >&2
            echo "$diagnostics" >&2
            exit 1
        fi
        [[ -z "$diagnostics" ]] || echo "$diagnostics" >&2
        objects+=("$build/src-$name.o")
    done
    # A reactor: no main, `_initialize` runs the constructors; the exports are the
    # bindings' (export_name attributes). Debian's libc.a carries DWARF, two thirds
    # of a small component: stripped unless C_CFLAGS asks for -g.
    strip=(-Wl,--strip-debug)
    [[ " ${C_CFLAGS:-} " != *" -g"* ]] || strip=()
    _c_quiet clang "${cflags[@]}" -mexec-model=reactor -Wl,--gc-sections "${strip[@]}" \
        "${objects[@]}" -o "$build/core.wasm"
    _c_quiet "$wasm_tools" component new "$build/core.wasm" \
        --adapt "wasi_snapshot_preview1=$adapter" -o "$out.tmp"
    _c_quiet "$wasm_tools" validate "$out.tmp"
    mv "$out.tmp" "$out"
)
