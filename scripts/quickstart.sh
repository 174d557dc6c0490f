#!/usr/bin/env bash
# The quickstart: builds wasmbgp and its plugins, starts BIRD on loopback as the peer,
# runs wasmbgp on examples/quickstart/wasmbgp.toml, and shows the peer's routes while a
# health-checked service goes down and comes back. Everything stops at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUN=/tmp/wasmbgp-quickstart
WASMBGP="$ROOT/target/release/wasmbgp"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "installing what is missing and building (first run: several minutes)"
scripts/install-deps.sh
# The quickstart runs tcp-check (Rust); scripts/test.sh builds every language.
scripts/build-plugins.sh --languages rust
cargo build --release --locked -p wasmbgp 2>&1 | tail -n 1

rm -rf "$RUN" && mkdir -p "$RUN"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$RUN/bird.pid" ] && kill "$(cat "$RUN/bird.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

service_up() {
    python3 -m http.server 18080 --bind 127.0.0.1 >/dev/null 2>&1 &
    SERVICE=$!
    pids+=("$SERVICE")
}
peer_routes() { birdc -s "$RUN/bird.ctl" show route protocol wasmbgp | tail -n +3 | sed 's/^/    /'; }
wait_for() { # wait_for DESCRIPTION COMMAND... (up to 15 s)
    local what=$1; shift
    for _ in $(seq 150); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "timed out waiting for $what" >&2; return 1
}

say "starting BIRD (the peer) on 127.0.0.2:1791 and a web service on 127.0.0.1:18080"
bird -c examples/quickstart/bird.conf -s "$RUN/bird.ctl" -P "$RUN/bird.pid"
service_up

say "wasmbgp check examples/quickstart/wasmbgp.toml"
"$WASMBGP" check examples/quickstart/wasmbgp.toml
"$WASMBGP" run examples/quickstart/wasmbgp.toml >"$RUN/wasmbgp.log" 2>&1 &
DAEMON=$!
pids+=("$DAEMON")
CTL=("$WASMBGP" ctl --socket "$RUN/wasmbgp.sock")
established() { "${CTL[@]}" show neighbors --json 2>/dev/null | grep -q '"established"'; }
wait_for "the session" established
wait_for "the service route" sh -c "birdc -s $RUN/bird.ctl show route 100.10.0.100/32 | grep -q 100.10.0.100"
"${CTL[@]}" show neighbors
"${CTL[@]}" show plugins
say "BIRD holds (service up)"
peer_routes

say "stopping the web service: the health check fails twice (fall = 2), the VIP is withdrawn"
kill "$SERVICE"
wait_for "the withdrawal" sh -c "! birdc -s $RUN/bird.ctl show route 100.10.0.100/32 | grep -q 100.10.0.100"
peer_routes

say "starting it again: after two good checks (rise = 2) the VIP is back"
service_up
wait_for "the announcement" sh -c "birdc -s $RUN/bird.ctl show route 100.10.0.100/32 | grep -q 100.10.0.100"
peer_routes

say "ExaBGP-style control: announce and withdraw a route by hand"
"${CTL[@]}" announce route 100.20.0.0/24 next-hop self med 50 community [65001:20]
wait_for "the ctl route" sh -c "birdc -s $RUN/bird.ctl show route 100.20.0.0/24 | grep -q 100.20"
peer_routes
"${CTL[@]}" withdraw route 100.20.0.0/24
wait_for "the ctl withdrawal" sh -c "! birdc -s $RUN/bird.ctl show route 100.20.0.0/24 | grep -q 100.20"

say "SIGTERM: wasmbgp sends Cease to BIRD and exits"
kill -TERM "$DAEMON"
wait "$DAEMON" || true
sleep 0.3
grep -h "Administrative shutdown" "$RUN/bird.log" | sed 's/^/    /'
say "done (logs in $RUN)"
