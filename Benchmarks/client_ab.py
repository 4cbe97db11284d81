#!/usr/bin/env python3
"""Two kafka-bench binaries (our clients before and after a change) against one minibroker, taking turns:
the client side's before/after.

    python3 Benchmarks/client_ab.py --a /tmp/before/kafka-bench --b .build/release/kafka-bench \
        --minibroker .build/release/minibroker --rounds 5

Each round (order alternating) each client produces then consumes 100 B records (5 M) and 10 KB records
(1 GB), times --scale, against a broker started for its turn on a fresh data directory (removed after it), so
neither client writes behind the other's gigabytes still in writeback (acks=1, no idempotence, linger 5 ms,
1 MB batches as compare.py runs it). Prints the median of each load per client and the ratio b/a, as markdown.
"""
import argparse
import os
import shutil
import statistics
import tempfile

from ab import LOADS, bench, free_port, run_broker


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="kafka-bench before")
    parser.add_argument("--b", required=True, help="kafka-bench after")
    parser.add_argument("--minibroker", default=".build/release/minibroker")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=int, default=1)
    args = parser.parse_args()
    results = {}
    for round in range(args.rounds):
        order = (("a", args.a), ("b", args.b)) if round % 2 == 0 else (("b", args.b), ("a", args.a))
        for name, binary in order:
            directory = tempfile.mkdtemp(prefix="client-ab-")
            port = free_port()
            proc = run_broker(args.minibroker, port, directory)
            try:
                for label, size, count in LOADS:
                    topic = f"client-ab-{name}-{round}-{label.replace(' ', '')}"
                    for mode in ("produce", "consume"):
                        r = bench(binary, port, mode, topic, size, count * args.scale)
                        results.setdefault((name, label, mode), []).append(r["recordsPerSecond"])
            finally:
                proc.terminate()
                proc.wait(timeout=60)
                shutil.rmtree(directory, ignore_errors=True)
                os.sync()  # the removed data's writeback is not the next turn's
    print(f"| load | {os.path.basename(args.a)} (a) | (b) | b/a |")
    print("|---|---:|---:|---:|")
    for label, _, _ in LOADS:
        for mode in ("produce", "consume"):
            a = statistics.median(results[("a", label, mode)])
            b = statistics.median(results[("b", label, mode)])
            print(f"| {mode} {label} | {a / 1e6:.2f} M rec/s | {b / 1e6:.2f} M rec/s | {b / a:.2f} |")


if __name__ == "__main__":
    main()
