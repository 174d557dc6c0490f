#!/usr/bin/env bash
# Install what the wasmbgp end-to-end interop tests need.
#
# Idempotent and quiet on success: apt runs only when a package is missing,
# and any routing daemon a package starts on install is stopped again (the
# tests start their own instances with private configs on loopback).
set -euo pipefail

# iproute2: the GTSM test's network namespaces; systemd: `systemd-analyze` for the unit's
# offline checks; util-linux: `setpriv` to run the daemon as the unit's user would.
# clang, lld, wasi-libc, libclang-rt-dev-wasm32: C plugins (scripts/lang/c.sh).
PACKAGES=(bird2 gobgpd frr exabgp dnsmasq-base prometheus pmacct iproute2 systemd util-linux openssl
    clang lld wasi-libc libclang-rt-dev-wasm32)

log() { printf 'install-deps: %s\n' "$*" >&2; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done

# node and npm: JavaScript plugins (componentize-qjs, scripts/lang/js.sh). Debian's
# packages unless a node with npm is there already (e.g. NodeSource's, which conflicts).
if ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi

if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    # Keep the packages' services from starting: invoke-rc.d honours
    # policy-rc.d exit code 101 ("action forbidden"). Only install our own
    # policy file if none exists, and remove only the one we created.
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 0755 "$policy"
        created_policy=1
    fi
    cleanup_policy() {
        if [ "$created_policy" -eq 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi
    }
    trap cleanup_policy EXIT
    "${SUDO[@]}" apt-get update -qq >/dev/null
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null
    cleanup_policy
    trap - EXIT
fi

# Stop packaged services that may have started anyway. Each match is narrowed
# to how the package's own service runs, never to test instances (which run
# as root, with configs in temporary directories, started without -d).
stop_pids() {
    local what=$1
    shift
    local pids=("$@")
    [ "${#pids[@]}" -gt 0 ] || return 0
    log "stopping packaged $what (pids ${pids[*]})"
    "${SUDO[@]}" kill -TERM "${pids[@]}" 2>/dev/null || true
}

# BIRD's Debian service drops privileges to the user "bird".
if id bird >/dev/null 2>&1; then
    mapfile -t pids < <(pgrep -u bird -x bird || true)
    stop_pids bird "${pids[@]}"
fi
# FRR's init script starts watchfrr, which starts daemons with "-d -F traditional"
# and pid files under /run/frr.
mapfile -t pids < <(pgrep -x watchfrr || true)
stop_pids watchfrr "${pids[@]}"
for daemon in zebra bgpd staticd mgmtd; do
    pidfile=/run/frr/$daemon.pid
    if [ -r "$pidfile" ]; then
        pid=$(cat "$pidfile" 2>/dev/null || true)
        if [ -n "$pid" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null || true)" = "$daemon" ]; then
            stop_pids "$daemon" "$pid"
        fi
    fi
done
# GoBGP's service reads /etc/gobgpd.conf; ExaBGP's reads /etc/exabgp/exabgp.conf.
mapfile -t pids < <(pgrep -f '^/usr/bin/gobgpd -f /etc/gobgpd\.conf' || true)
stop_pids gobgpd "${pids[@]}"
mapfile -t pids < <(pgrep -f 'exabgp /etc/exabgp/exabgp\.conf' || true)
stop_pids exabgp "${pids[@]}"
# Prometheus's service runs as the user "prometheus"; pmacct's daemons read /etc/pmacct.
if id prometheus >/dev/null 2>&1; then
    mapfile -t pids < <(pgrep -u prometheus || true)
    stop_pids prometheus "${pids[@]}"
fi
mapfile -t pids < <(pgrep -f '^/usr/sbin/pm(acctd|bmpd|bgpd) .*-f /etc/pmacct/' || true)
stop_pids pmacct "${pids[@]}"

if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx wasm32-wasip2; then
        log "adding rust target wasm32-wasip2"
        rustup target add wasm32-wasip2 >/dev/null 2>&1
    fi
else
    log "warning: rustup not found; cannot add target wasm32-wasip2"
fi

if ! command -v cargo-nextest >/dev/null 2>&1; then
    log "installing cargo-nextest"
    cargo install --locked --quiet cargo-nextest
fi
