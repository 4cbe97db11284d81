#!/bin/sh
# Builds Examples/Quickstart (an application that depends on the client products, as a project of
# yours would) and runs it against a real minibroker on a free loopback port: the README's client
# examples must keep compiling and working. Run by `make example` (part of `make test`).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
# The example names the repository by a path whose last component is its package identity.
mkdir -p "$root/.build-example"
ln -sfn "$root" "$root/.build-example/swift-kafka"
cd "$root/Examples/Quickstart"
swift build
# --build-only: built beside other work (make test), run later.
[ "${1:-}" = "--build-only" ] && exit 0
broker="$(cd "$root" && swift build --show-bin-path)/minibroker"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
data=$(mktemp -d)
"$broker" --host 127.0.0.1 --port "$port" --data-dir "$data" --log-level warning &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data"' EXIT
python3 - "$port" <<'PY'
import socket, sys, time
deadline = time.time() + 30
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.2).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit("minibroker did not start")
PY
out=$(timeout 120 .build/debug/Quickstart "127.0.0.1:$port" orders)
echo "$out"
echo "$out" | grep -q '^first record at partition 0 offset 0$'
echo "$out" | grep -q '^read 100 records$'
echo "$out" | grep -q '^shared client: orders has 1 partition(s), the extra record is at offset 100$'
echo "example: ok"
