# wasmbgp: building plugins written in JavaScript (source this file; bash, `set -euo pipefail` safe).
#
# Toolchain: componentize-qjs (npm package `componentize-qjs`, pinned below) embeds the
# QuickJS engine, generates the bindings of a WIT world at build time, runs the plugin's
# modules once and snapshots the result (Wizer), so a component starts with its
# top-level code already run (tables built at module level cost nothing at start). It
# needs Node.js >= 18 and npm; the package brings a prebuilt native binary for the
# platform. Everything lives under "$WASMBGP_TOOLS/js" (WASMBGP_TOOLS must be set).
#
# js_tools_install
#     Installs componentize-qjs at the pinned version with
#     `npm install --prefix "$WASMBGP_TOOLS/js"` when it is missing or another version
#     is there, and checks that its native binding loads. Quiet on success; says what
#     is missing (node, npm) or shows npm's output when the install fails.
#
# js_component SRC_DIR WIT_DIR WORLD OUT
#     Builds the component OUT (e.g. target/plugins/NAME.wasm) from SRC_DIR/app.js, an
#     ES module exporting the world's interfaces as camelCase objects
#     (`export const healthCheck = { init, check };`) and importing the host's
#     interfaces by name with version (`import probe from "wasmbgp:plugin/probe@0.2.0";`).
#     app.js may import other modules of SRC_DIR by relative path
#     (`import { rules } from "./rules.js";`); SRC_DIR is the module root, so nothing
#     outside it can be imported. The component is built for the world WORLD of the
#     WIT package in WIT_DIR with componentize-qjs's non-async runtime (`--sync`: the
#     component uses no component-model-async ABI), written to OUT.tmp and moved to
#     OUT. The tool's output is shown only when it fails. Run js_tools_install first.
#
# Environment: WASMBGP_TOOLS (required); JS_COMPONENTIZE_FLAGS (extra flags for
# componentize-qjs, e.g. "--opt-size" for a smaller, slower runtime, or "--minify").
#
# Bindings, in short (componentize-qjs 0.4.5): records are objects with camelCase
# fields; enums and variant tags are the WIT names as strings ("import",
# {tag: "refused", val: "..."}); list<u8> is a Uint8Array, other lists are Arrays (a
# typed array such as Uint32Array is accepted for a list<u32> result, and copied in
# bulk); u64 is a Number, so values above 2^53 arrive rounded to the nearest double;
# a function returning result<T, E> returns T or throws E (throw a string for
# result<_, string>), and an import's error is thrown as an Error whose `payload` is E.

# Pinned version.
JS_COMPONENTIZE_QJS_VERSION="0.4.5"

# Prints an error and fails.
_js_die() {
    echo "js.sh: $*" >&2
    return 1
}

# Runs a command with its output shown only when it fails.
_js_quiet() {
    local out
    if ! out="$("$@" 2>&1)"; then
        echo "js.sh: failed: $*" >&2
        [[ -z "$out" ]] || echo "$out" >&2
        return 1
    fi
}

# The tools directory ("$WASMBGP_TOOLS/js"), created.
_js_tools_dir() {
    [[ -n "${WASMBGP_TOOLS:-}" ]] || _js_die "WASMBGP_TOOLS is not set (the directory for build tools)" || return 1
    mkdir -p "$WASMBGP_TOOLS/js" || return 1
    (cd "$WASMBGP_TOOLS/js" && pwd)
}

# Fails unless node (>= 18) is on PATH.
_js_need_node() {
    command -v node >/dev/null 2>&1 \
        || _js_die "node is missing: install Node.js 18 or newer (e.g. apt-get install nodejs npm)" || return 1
    local major
    major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
    [[ "$major" =~ ^[0-9]+$ && "$major" -ge 18 ]] \
        || _js_die "node $(node --version 2>/dev/null || echo '?') is too old: componentize-qjs needs Node.js 18 or newer" || return 1
}

# The installed componentize-qjs version under $1 (empty when none).
_js_installed_version() {
    local manifest="$1/node_modules/componentize-qjs/package.json"
    [[ -f "$manifest" ]] || return 0
    node -p 'require(process.argv[1]).version' "$manifest" 2>/dev/null || true
}

js_tools_install() {
    local root
    root="$(_js_tools_dir)" || return 1
    _js_need_node || return 1
    if [[ "$(_js_installed_version "$root")" != "$JS_COMPONENTIZE_QJS_VERSION" ]]; then
        command -v npm >/dev/null 2>&1 \
            || _js_die "npm is missing: it installs componentize-qjs (e.g. apt-get install npm)" || return 1
        _js_quiet npm install --prefix "$root" --no-audit --no-fund --loglevel=error \
            "componentize-qjs@$JS_COMPONENTIZE_QJS_VERSION" || return 1
        [[ "$(_js_installed_version "$root")" == "$JS_COMPONENTIZE_QJS_VERSION" ]] \
            || _js_die "componentize-qjs is not version $JS_COMPONENTIZE_QJS_VERSION under $root after npm install" || return 1
    fi
    # The native binding is an optional dependency per platform: make sure it is there.
    _js_quiet node -e 'require(require("path").join(process.argv[1], "node_modules/componentize-qjs"))' "$root" \
        || _js_die "componentize-qjs's native binding does not load on $(uname -sm); delete $root and retry, or see the error above" || return 1
}

# Runs in a subshell of its own (strict mode, a trap that removes OUT.tmp on failure).
js_component() (
    set -euo pipefail
    [[ $# == 4 ]] || _js_die "usage: js_component SRC_DIR WIT_DIR WORLD OUT"
    src="$1" wit="$2" world="$3" out="$4"
    [[ -d "$src" ]] || _js_die "no source directory $src"
    [[ -f "$src/app.js" ]] || _js_die "no $src/app.js (the plugin's entry module)"
    [[ -d "$wit" || -f "$wit" ]] || _js_die "no WIT directory $wit"
    [[ "$world" =~ ^[a-z][a-z0-9-]*$ ]] || _js_die "bad world name \"$world\""
    _js_need_node
    tools="$(_js_tools_dir)"
    cli="$tools/node_modules/componentize-qjs/cli.mjs"
    [[ -f "$cli" && "$(_js_installed_version "$tools")" == "$JS_COMPONENTIZE_QJS_VERSION" ]] \
        || _js_die "componentize-qjs $JS_COMPONENTIZE_QJS_VERSION is missing under $tools: run js_tools_install first"
    src="$(cd "$src" && pwd)"
    mkdir -p "$(dirname "$out")"

    trap 'rm -f "$out.tmp"' EXIT
    # shellcheck disable=SC2206 # extra flags split on spaces on purpose
    flags=(--sync ${JS_COMPONENTIZE_FLAGS:-})
    _js_quiet node "$cli" --wit "$wit" --world "$world" --js "$src/app.js" \
        --module-root "$src" "${flags[@]}" -o "$out.tmp"
    [[ -s "$out.tmp" ]] || _js_die "componentize-qjs wrote no $out.tmp"
    mv "$out.tmp" "$out"
    trap - EXIT
)
