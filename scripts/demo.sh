#!/usr/bin/env bash
# The main job, end to end: start minibroker and user-stats, submit users, show the stats, stop.
# Run through `make demo` (which installs and builds what is missing first).
set -euo pipefail
BIN=${BIN:?set BIN to the swift build bin path}
USERS=${USERS:-10}
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
WORK=$(mktemp -d /tmp/minibroker-demo.XXXXXX)
BOOTSTRAP=127.0.0.1:$PORT
cleanup() {
    [[ -n "${STATS_PID:-}" ]] && kill -TERM "$STATS_PID" 2>/dev/null && wait "$STATS_PID" 2>/dev/null || true
    [[ -n "${BROKER_PID:-}" ]] && kill -TERM "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null || true
}
trap cleanup EXIT

echo "== 1. start minibroker on $BOOTSTRAP (data in $WORK/data, log $WORK/broker.log)"
"$BIN/minibroker" --host 127.0.0.1 --port "$PORT" --data-dir "$WORK/data" >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

echo "== 2. start user-stats (group user-stats, db $WORK/stats.sqlite, log $WORK/user-stats.log)"
"$BIN/user-stats" run --bootstrap-server "$BOOTSTRAP" --db "$WORK/stats.sqlite" --report-interval 2 >"$WORK/user-stats.log" 2>&1 &
STATS_PID=$!

echo "== 3. user-events submit $USERS"
"$BIN/user-events" submit "$USERS" --bootstrap-server "$BOOTSTRAP"

echo "== 4. wait for user-stats to store all $USERS users"
for _ in $(seq 150); do
    stored=$("$BIN/user-stats" report --db "$WORK/stats.sqlite" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["totalUsers"])' 2>/dev/null || echo 0)
    [[ "$stored" -ge "$USERS" ]] && break
    sleep 0.2
done
sleep 2.5  # one more report interval, so the log shows a report with every user

echo "== 5. the stats consumer's log"
grep -E "New user inserted|New report generated" "$WORK/user-stats.log" | tail -n $((USERS + 3))

echo "== 6. user-stats report"
"$BIN/user-stats" report --db "$WORK/stats.sqlite"

echo "== 7. stop user-stats and minibroker"
cleanup
STATS_PID= BROKER_PID=
tail -n 1 "$WORK/user-stats.log"
tail -n 1 "$WORK/broker.log"
