#!/usr/bin/env bash
# Builds {{name}}.wasm and runs it with `wasmbgp plugin test`: the check must say
# "up" while a TCP listener answers on 127.0.0.1 (started here with python3), and
# "down" once the listener is gone. Set WASMBGP to test with another wasmbgp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
WASMBGP="${WASMBGP:-{{wasmbgp}}}"
./build.sh

# A listener on a free port of 127.0.0.1 that accepts and closes connections; it
# writes its port to $port_file.
port_file="$(mktemp)"
rm -f "$port_file"
python3 -c '
import os, socket, sys
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(16)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    server.accept()[0].close()
' "$port_file" &
listener=$!
trap 'kill "$listener" 2>/dev/null || true; rm -f "$port_file" "$port_file.tmp"' EXIT
for _ in $(seq 100); do
    [[ -s "$port_file" ]] && break
    kill -0 "$listener" 2>/dev/null || break
    sleep 0.1
done
[[ -s "$port_file" ]] || { echo "test.sh: the TCP listener (python3) did not start" >&2; exit 1; }
address="127.0.0.1:$(cat "$port_file")"

check() {
    "$WASMBGP" plugin test {{name}}.wasm --world healthcheck \
        --setting "address=$address" --grant "tcp=$address" \
        --checks 2 --interval 100ms --expect "$1"
}

echo "test.sh: $address is listening: expecting up"
check up
kill "$listener"
wait "$listener" 2>/dev/null || true
echo "test.sh: $address is closed: expecting down"
check down
echo "test.sh: ok"
