#!/usr/bin/env bash
# The main job, end to end and through HTTP as the original system was driven: start minibroker,
# user-stats and the user-events API; curl the report (empty), submit users (202), follow the
# submission, tail the stats log, curl the report again; then one assistance request accepted and one
# refused for a missing topic. Everything stops with SIGTERM at the end.
# Run through `make demo` (which installs and builds what is missing first).
set -euo pipefail
BIN=${BIN:?set BIN to the toolkit build bin path}
SERVICES_BIN=${SERVICES_BIN:?set SERVICES_BIN to the services build bin path}
USERS=${USERS:-10}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# The API on the original system's port 8000 when it is free.
port_or_free() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && free_port || echo "$1"; }
PORT=${PORT:-$(free_port)}
API_PORT=$(port_or_free 8000)
STATS_PORT=$(port_or_free 8001)
ASSIST_PORT=$(port_or_free 8002)
WORK=$(mktemp -d /tmp/minibroker-demo.XXXXXX)
export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$PORT
API=http://127.0.0.1:$API_PORT
PIDS=()
# Stops the processes one at a time, the last started first, so each service shuts down (flush,
# commit, LeaveGroup) while the broker is still there; the broker goes last.
cleanup() {
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${PIDS[i]}" 2>/dev/null || true
        wait "${PIDS[i]}" 2>/dev/null || true
    done
    PIDS=()
}
trap cleanup EXIT
wait_http() { for _ in $(seq 150); do curl -sf "$1/health" >/dev/null && return 0; sleep 0.1; done; echo "$1 did not start"; exit 1; }
show() { printf '$'; printf ' %q' "$@"; echo; "$@"; echo; }

echo "== 1. minibroker on $KAFKA_BOOTSTRAP_SERVERS (data in $WORK/data)"
"$BIN/minibroker" --host 127.0.0.1 --port "$PORT" --data-dir "$WORK/data" >"$WORK/broker.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

echo "== 2. user-stats (group user-stats, db $WORK/stats.sqlite, HTTP on $STATS_PORT, log $WORK/user-stats.log)"
"$SERVICES_BIN/user-stats" run --db "$WORK/stats.sqlite" --report-interval 2 --http-port "$STATS_PORT" >"$WORK/user-stats.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$STATS_PORT"

echo "== 3. the user-events API on $API (log $WORK/user-events.log)"
"$SERVICES_BIN/user-events" serve --http-port "$API_PORT" --stats-url "http://127.0.0.1:$STATS_PORT" >"$WORK/user-events.log" 2>&1 &
PIDS+=($!)
wait_http "$API"

echo "== 4. the report before any user"
show curl -s "$API/report"

echo "== 5. submit $USERS users: 202 Accepted at once"
echo "\$ curl -s -i -X POST $API/submit/$USERS"
response=$(curl -s -i -X POST "$API/submit/$USERS")
echo "$response"; echo
location=$(echo "$response" | tr -d '\r' | sed -n 's/^Location: //p')
for _ in $(seq 100); do
    state=$(curl -s "$API$location" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    [[ "$state" != running ]] && break
    sleep 0.1
done
show curl -s "$API$location"

echo "== 6. wait for user-stats to store all $USERS users, then its log"
for _ in $(seq 150); do
    stored=$(curl -s "$API/report" | python3 -c 'import json,sys; print(json.load(sys.stdin)["totalUsers"])' 2>/dev/null || echo 0)
    [[ "$stored" -ge "$USERS" ]] && break
    sleep 0.2
done
sleep 2.5  # one more report interval, so the log shows a report with every user
grep -E "New user inserted|New report generated" "$WORK/user-stats.log" | tail -n $((USERS + 3))
echo

echo "== 7. the report again"
show curl -s "$API/report"

echo "== 8. the assistance service on $ASSIST_PORT: a request for 'sales' (created first), one for a missing topic"
"$BIN/kfk" topics create sales --partitions 1 >/dev/null
"$SERVICES_BIN/assistance" serve --http-port "$ASSIST_PORT" >"$WORK/assistance.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$ASSIST_PORT"
show curl -s -i -X POST "http://127.0.0.1:$ASSIST_PORT/assistance" -H 'Content-Type: application/json' \
    -d '{"topic": "sales", "description": "A customer needs a quote for 40 seats"}'
show curl -s -i -X POST "http://127.0.0.1:$ASSIST_PORT/assistance" -H 'Content-Type: application/json' \
    -d '{"topic": "support", "description": "The printer is on fire"}'

echo "== 9. stop everything (SIGTERM)"
cleanup
tail -n 1 "$WORK/user-events.log"
tail -n 1 "$WORK/user-stats.log"
tail -n 1 "$WORK/broker.log"
