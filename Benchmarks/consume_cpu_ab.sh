#!/bin/sh
# Consume of 100 B records from two long-lived brokers holding the same 5 M records, taking turns,
# with each broker's CPU (utime + stime ticks from /proc) around each consume: the consume row of
# ab.py without its fresh-write page-cache state.
#
#     sh Benchmarks/consume_cpu_ab.sh A/minibroker B/minibroker .build/release/kafka-bench read_committed 6
set -eu
a=$1 b=$2 bench=$3 level=${4:-read_committed} rounds=${5:-6}
ports="39301 39302"
start() {  # binary port
    dir=$(mktemp -d)
    "$1" --host 127.0.0.1 --port "$2" --data-dir "$dir" --log-level warning > /dev/null 2>&1 &
    sleep 1
    "$bench" produce --bootstrap-server "127.0.0.1:$2" --topic t --record-size 100 --count 5000000 --acks=1 --disable-idempotence > /dev/null 2>&1
}
ticks() { awk '{print $14 + $15}' "/proc/$(pgrep -f -- "--port $1 " | head -1)/stat"; }
trap 'for p in $ports; do pkill -f -- "--port $p " || true; done' EXIT
start "$a" 39301
start "$b" 39302
i=0
while [ $i -lt "$rounds" ]; do
    for p in $ports; do
        before=$(ticks $p)
        rate=$("$bench" consume --bootstrap-server "127.0.0.1:$p" --topic t --count 5000000 --isolation-level "$level" 2>&1 | tail -1 | grep -o '[0-9]* records/s')
        echo "$([ $p = 39301 ] && echo a || echo b) ticks=$(( $(ticks $p) - before )) $rate"
    done
    i=$((i + 1))
done
