# wasmbgp: building plugins written in Python (source this file; bash, `set -euo pipefail` safe).
#
# Toolchain: componentize-py (from PyPI, pinned below) bundles CPython, the plugin's
# modules and the bindings of a WIT world into one component. It lives in a venv at
# "$WASMBGP_TOOLS/python" (WASMBGP_TOOLS must be set); python3 with its `venv` module
# must be on PATH.
#
# python_tools_install
#     Creates the venv and installs componentize-py into it unless that version is
#     there already (quiet on success; pip's output is shown when it fails). Concurrent
#     calls take turns (flock on "$WASMBGP_TOOLS/python.lock").
#
# python_component SRC_DIR WIT_DIR WORLD OUT
#     Builds the component OUT (e.g. target/plugins/NAME.wasm) from the module `app`
#     in SRC_DIR (app.py, which may import the other modules of SRC_DIR) for the world
#     WORLD of the WIT package in WIT_DIR:
#     `componentize-py -d WIT_DIR -w WORLD componentize -p SRC_DIR app -o OUT.tmp`,
#     then moved to OUT. Quiet on success. Run python_tools_install first.
#
# Environment: WASMBGP_TOOLS (required); PYTHON (default python3: the interpreter the
# venv is made from).

# componentize-py 0.25.1 is the version the example plugins are built with (its
# CPython and wit-bindgen produce components the host's wasmtime runs).
PYTHON_COMPONENTIZE_PY_VERSION="0.25.1"

# Prints an error and fails.
_python_die() {
    echo "python.sh: $*" >&2
    return 1
}

# Runs a command with its output shown only when it fails.
_python_quiet() {
    local out
    if ! out="$("$@" 2>&1)"; then
        echo "python.sh: failed: $*" >&2
        [[ -z "$out" ]] || echo "$out" >&2
        return 1
    fi
}

# The venv directory ("$WASMBGP_TOOLS/python"), its parent created.
_python_venv_dir() {
    [[ -n "${WASMBGP_TOOLS:-}" ]] || _python_die "WASMBGP_TOOLS is not set (the directory for build tools)" || return 1
    mkdir -p "$WASMBGP_TOOLS" || return 1
    echo "$(cd "$WASMBGP_TOOLS" && pwd)/python"
}

# True when the venv's componentize-py is the pinned version.
_python_has_componentize_py() {
    local venv="$1"
    [[ -x "$venv/bin/componentize-py" ]] \
        && "$venv/bin/componentize-py" --version 2>/dev/null | grep -qw -- "$PYTHON_COMPONENTIZE_PY_VERSION"
}

# Installs into the venv $1 (the caller holds the lock).
_python_install_locked() {
    local venv="$1" python="${PYTHON:-python3}"
    _python_has_componentize_py "$venv" && return 0
    command -v "$python" >/dev/null 2>&1 || _python_die "$python is needed (Debian: apt-get install python3 python3-venv)" || return 1
    if [[ ! -x "$venv/bin/pip" ]]; then
        rm -rf "$venv"
        _python_quiet "$python" -m venv "$venv" \
            || _python_die "cannot create a venv with $python (Debian: apt-get install python3-venv)" || return 1
    fi
    _python_quiet "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "componentize-py==$PYTHON_COMPONENTIZE_PY_VERSION" || return 1
    _python_has_componentize_py "$venv" \
        || _python_die "$venv/bin/componentize-py is not version $PYTHON_COMPONENTIZE_PY_VERSION after pip install" || return 1
}

python_tools_install() {
    local venv
    venv="$(_python_venv_dir)" || return 1
    _python_has_componentize_py "$venv" && return 0
    if command -v flock >/dev/null 2>&1; then
        (
            flock 9 || exit 1
            _python_install_locked "$venv"
        ) 9>"$WASMBGP_TOOLS/python.lock"
    else
        _python_install_locked "$venv"
    fi
}

# Runs in a subshell of its own (strict mode, a trap that removes OUT.tmp on failure).
python_component() (
    set -euo pipefail
    [[ $# == 4 ]] || _python_die "usage: python_component SRC_DIR WIT_DIR WORLD OUT"
    src="$1" wit="$2" world="$3" out="$4"
    [[ -d "$src" ]] || _python_die "no source directory $src"
    [[ -f "$src/app.py" ]] || _python_die "no $src/app.py (the module \`app\` is the plugin)"
    [[ -d "$wit" ]] || _python_die "no WIT directory $wit"
    [[ "$world" =~ ^[a-z][a-z0-9-]*$ ]] || _python_die "bad world name \"$world\""
    venv="$(_python_venv_dir)"
    _python_has_componentize_py "$venv" \
        || _python_die "$venv/bin/componentize-py $PYTHON_COMPONENTIZE_PY_VERSION is missing: run python_tools_install first"
    mkdir -p "$(dirname "$out")"
    trap 'rm -f "$out.tmp"' EXIT
    # componentize-py writes bytecode caches next to the sources otherwise.
    PYTHONDONTWRITEBYTECODE=1 _python_quiet "$venv/bin/componentize-py" -d "$wit" -w "$world" \
        componentize -p "$src" app -o "$out.tmp"
    mv "$out.tmp" "$out"
)
