#!/usr/bin/env bash
# Installs wasmbgp as a systemd service, the way dist/systemd/wasmbgp.service runs it:
#
#   PREFIX/bin/wasmbgp                         the binary (target/release/wasmbgp)
#   PREFIX/lib/wasmbgp/plugins/*.wasm          the example plugins (target/plugins, no fixtures)
#   PREFIX/lib/sysusers.d/wasmbgp.conf         the system user `wasmbgp` (systemd-sysusers)
#   UNITDIR/wasmbgp.service                    the unit, ExecStart= pointing at PREFIX/bin
#   /etc/wasmbgp/                              0750 root:wasmbgp
#   /etc/wasmbgp/wasmbgp.toml                  0640 root:wasmbgp, only if there is none
#                                              (dist/systemd/wasmbgp.toml, plugin paths
#                                              under PREFIX)
#
# and creates the user `wasmbgp` (no login, no home). systemd creates /run/wasmbgp (the
# control socket) and /var/cache/wasmbgp (compiled plugins) when the service starts.
#
# Usage: scripts/install.sh [--prefix DIR] [--destdir DIR] [--unitdir DIR]
#                           [--bin FILE] [--plugins DIR | --no-plugins] [--dry-run]
#   --prefix   default /usr/local
#   --destdir  stage everything under DIR (also $DESTDIR): files only, no user, no
#              chown, no systemctl; for packaging and for tests
#   --unitdir  default /etc/systemd/system
#   --bin      default target/release/wasmbgp (build it: cargo build --release -p wasmbgp)
#   --plugins  default target/plugins if it exists
#   --dry-run  print what would be done, change nothing
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX=/usr/local
DESTDIR="${DESTDIR:-}"
UNITDIR=/etc/systemd/system
BIN="$ROOT/target/release/wasmbgp"
PLUGINS="$ROOT/target/plugins"
WITH_PLUGINS=auto
DRY_RUN=0
USER_NAME=wasmbgp

die() { echo "install.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
        --prefix=*) PREFIX="${1#*=}"; shift ;;
        --destdir) DESTDIR="${2:?--destdir needs a directory}"; shift 2 ;;
        --destdir=*) DESTDIR="${1#*=}"; shift ;;
        --unitdir) UNITDIR="${2:?--unitdir needs a directory}"; shift 2 ;;
        --unitdir=*) UNITDIR="${1#*=}"; shift ;;
        --bin) BIN="${2:?--bin needs a file}"; shift 2 ;;
        --bin=*) BIN="${1#*=}"; shift ;;
        --plugins) PLUGINS="${2:?--plugins needs a directory}"; WITH_PLUGINS=yes; shift 2 ;;
        --plugins=*) PLUGINS="${1#*=}"; WITH_PLUGINS=yes; shift ;;
        --no-plugins) WITH_PLUGINS=no; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

[[ "$PREFIX" == /* ]] || die "--prefix must be absolute: $PREFIX"
[[ "$UNITDIR" == /* ]] || die "--unitdir must be absolute: $UNITDIR"
PREFIX="${PREFIX%/}"
[[ -n "$PREFIX" ]] || PREFIX=/usr
[[ -z "$DESTDIR" ]] || DESTDIR="$(realpath -m "$DESTDIR")"
[[ -x "$BIN" ]] || die "no wasmbgp binary at $BIN: build it (cargo build --release -p wasmbgp) or give --bin"
if [[ $WITH_PLUGINS == auto ]]; then
    if [[ -d "$PLUGINS" ]]; then WITH_PLUGINS=yes; else WITH_PLUGINS=no; fi
fi
[[ $WITH_PLUGINS == no || -d "$PLUGINS" ]] || die "no plugins directory $PLUGINS"
STAGED=0
[[ -z "$DESTDIR" ]] || STAGED=1
if [[ $STAGED == 0 && $DRY_RUN == 0 && $EUID -ne 0 ]]; then
    die "installing into the system needs root (or stage with --destdir, or --dry-run)"
fi

# Every change goes through `run`: printed, and done unless --dry-run.
run() {
    printf '+'; printf ' %q' "$@"; printf '\n'
    if [[ $DRY_RUN == 0 ]]; then "$@"; fi
}
# Writes stdin to FILE (mode MODE), printed as one step.
write_file() {
    local mode="$1" file="$2" content
    content="$(cat)"
    printf '+ write %q (mode %s)\n' "$file" "$mode"
    if [[ $DRY_RUN == 0 ]]; then
        printf '%s\n' "$content" >"$file.tmp.$$"
        chmod "$mode" "$file.tmp.$$"
        mv -f "$file.tmp.$$" "$file"
    fi
}

BINDIR="$PREFIX/bin"
PLUGINDIR="$PREFIX/lib/wasmbgp/plugins"
SYSUSERSDIR="$PREFIX/lib/sysusers.d"
CONFDIR=/etc/wasmbgp
CONFIG="$CONFDIR/wasmbgp.toml"

echo "installing wasmbgp: prefix $PREFIX, unit in $UNITDIR${DESTDIR:+, staged under $DESTDIR}$([[ $DRY_RUN == 1 ]] && echo ', dry run')"

# 1. The system user, first: the config directory's group is its group.
write_sysusers() {
    write_file 0644 "$DESTDIR$SYSUSERSDIR/wasmbgp.conf" <<EOF
# The system user of wasmbgp.service (installed by wasmbgp's scripts/install.sh).
u $USER_NAME - "wasmbgp BGP speaker" /nonexistent /usr/sbin/nologin
EOF
}
run install -d -m 0755 "$DESTDIR$SYSUSERSDIR"
write_sysusers
if [[ $STAGED == 1 ]]; then
    echo "  (staged: the user $USER_NAME is created on the target by systemd-sysusers $SYSUSERSDIR/wasmbgp.conf)"
elif getent passwd "$USER_NAME" >/dev/null 2>&1; then
    echo "  user $USER_NAME exists"
elif command -v systemd-sysusers >/dev/null 2>&1; then
    run systemd-sysusers "$SYSUSERSDIR/wasmbgp.conf"
else
    run useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment "wasmbgp BGP speaker" "$USER_NAME"
fi

# 2. The binary and the plugins (root-owned, not writable by the service).
run install -d -m 0755 "$DESTDIR$BINDIR"
run install -m 0755 "$BIN" "$DESTDIR$BINDIR/wasmbgp"
if [[ $WITH_PLUGINS == yes ]]; then
    run install -d -m 0755 "$DESTDIR$PLUGINDIR"
    shopt -s nullglob
    for wasm in "$PLUGINS"/*.wasm; do
        case "$(basename "$wasm")" in fixture-*) continue ;; esac
        run install -m 0644 "$wasm" "$DESTDIR$PLUGINDIR/"
    done
    shopt -u nullglob
fi

# 3. The unit, its paths under PREFIX.
run install -d -m 0755 "$DESTDIR$UNITDIR"
sed -e "s#/usr/bin/wasmbgp#$BINDIR/wasmbgp#g" "$ROOT/dist/systemd/wasmbgp.service" |
    write_file 0644 "$DESTDIR$UNITDIR/wasmbgp.service"

# 4. The config directory and, if there is none, the example config.
run install -d -m 0750 "$DESTDIR$CONFDIR"
if [[ -e "$DESTDIR$CONFIG" ]]; then
    echo "  keeping $DESTDIR$CONFIG"
else
    sed -e "s#/usr/lib/wasmbgp/plugins#$PLUGINDIR#g" "$ROOT/dist/systemd/wasmbgp.toml" |
        write_file 0640 "$DESTDIR$CONFIG"
fi
if [[ $STAGED == 0 ]]; then
    # Readable by the service's group, writable by root only.
    run chown "root:$USER_NAME" "$CONFDIR"
    if [[ $DRY_RUN == 1 || -e "$CONFIG" ]]; then
        run chown "root:$USER_NAME" "$CONFIG"
    fi
fi

# 5. Tell systemd.
if [[ $STAGED == 0 && -d /run/systemd/system ]]; then
    run systemctl daemon-reload
fi

cat <<EOF
done. Next:
  edit $CONFIG (neighbors, the service checked); wasmbgp check $CONFIG
  systemctl enable --now wasmbgp     # starts after \`wasmbgp check\` accepts the config
  systemctl reload wasmbgp           # after editing: check, then apply only what changed
  journalctl -u wasmbgp              # JSON log lines
EOF
