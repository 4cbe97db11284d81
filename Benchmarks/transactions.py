"""Transactions' cost (issue 23): transactional produce against plain idempotent produce, and
read_committed consume against read_uncommitted, on one release MiniBroker per round.

    python3 Benchmarks/transactions.py --minibroker .build/release/minibroker \\
        --kafka-bench Benchmarks/.build/release/kafka-bench --rounds 3

Produce loads (100 B records, acks=all, idempotence on): no transactions; a transaction committed every
100 ms; one committed every 10,000 records. Consume loads read the topic the last of those wrote (full of
transaction markers) from the beginning, with each isolation level. Loads take turns within a round;
the medians of the rounds are printed. `--transaction-version 1` finalizes transaction.version 1 in each
fresh data directory before the broker starts (AddPartitionsToTxn before a partition's first batch, the
epoch kept across ends); the default is the broker's, 2 (KIP-890 part 2).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from ab import cpu_seconds, free_port, run_broker  # noqa: E402


def kafka_bench(binary, port, mode, topic, count, extra=()):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        args = [binary, mode, "--bootstrap-server", f"127.0.0.1:{port}", "--topic", topic, "--partitions", "1",
                "--record-size", "100", "--count", str(count), "--json", out.name, *extra]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
        return json.load(open(out.name))


PRODUCE = [
    ("idempotent, no transactions", "plain", []),
    ("transaction every 100 ms", "every-100ms", ["--transactional-id", "bench-ms", "--commit-every-ms", "100"]),
    ("transaction every 10,000 records", "every-10000", ["--transactional-id", "bench-records", "--commit-every-records", "10000"]),
]
CONSUME = [("read_uncommitted", ["--isolation-level", "read_uncommitted"]),
           ("read_committed", ["--isolation-level", "read_committed"])]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minibroker", default=".build/release/minibroker")
    parser.add_argument("--kafka-bench", default="Benchmarks/.build/release/kafka-bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=2_000_000, help="records per load")
    parser.add_argument("--transaction-version", type=int, choices=(0, 1, 2), help="the finalized transaction.version")
    args = parser.parse_args()
    results = {}  # label -> [(records/s, broker CPU s per M records)]
    for round in range(args.rounds):
        directory = tempfile.mkdtemp(prefix="txn-bench-")
        if args.transaction_version is not None:
            with open(os.path.join(directory, "finalized-features.properties"), "w") as f:
                f.write(f"group.version=1\ntransaction.version={args.transaction_version}\nepoch=1\n")
        port = free_port()
        proc = run_broker(args.minibroker, port, directory)
        try:
            loads = PRODUCE if round % 2 == 0 else list(reversed(PRODUCE))
            for label, name, extra in loads:
                before = cpu_seconds(proc.pid)
                r = kafka_bench(args.kafka_bench, port, "produce", f"r{round}-{name}", args.count, extra)
                cpu = (cpu_seconds(proc.pid) - before) / (r["records"] / 1e6)
                results.setdefault("produce: " + label, []).append((r["recordsPerSecond"], cpu))
            topic = f"r{round}-every-10000"
            for label, extra in (CONSUME if round % 2 == 0 else list(reversed(CONSUME))):
                before = cpu_seconds(proc.pid)
                r = kafka_bench(args.kafka_bench, port, "consume", topic, args.count, extra)
                cpu = (cpu_seconds(proc.pid) - before) / (r["records"] / 1e6)
                results.setdefault("consume: " + label, []).append((r["recordsPerSecond"], cpu))
        finally:
            proc.terminate()
            proc.wait()
            shutil.rmtree(directory, ignore_errors=True)
    version = args.transaction_version if args.transaction_version is not None else "the broker's default"
    print(f"| load ({args.count:,} records of 100 B, median of {args.rounds}, transaction.version {version}) | records/s | broker CPU s per M records |")
    print("|---|---:|---:|")
    for label, runs in results.items():
        print(f"| {label} | {statistics.median(r[0] for r in runs) / 1e6:.2f} M | {statistics.median(r[1] for r in runs):.2f} |")


if __name__ == "__main__":
    main()
