#!/usr/bin/env python3
"""Our consumer (kafka-bench consume) against librdkafka's on the same MiniBroker, same data.

For each record size a fresh MiniBroker (release build) is started and one topic with one partition is
filled with N records by kafka-bench produce. Then each consumer reads all N from offset 0 with the same
fetch settings (max.partition.fetch.bytes 1 MiB, fetch.max.bytes 50 MiB), one after another, its clock
starting at the first record: ours through kafka-bench consume (manual assignment), librdkafka from C
through kcat (-C -e, output discarded) and through confluent-kafka (consume(num_messages=10000)). kcat's
time includes its start-up (under 50 ms here) and is the least favourable to it.

    python3 Benchmarks/consumer_compare.py --minibroker .build/release/minibroker --kafka-bench .build/release/kafka-bench
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Consumer, TopicPartition

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (broker processes and topic creation)

FETCH = {"max.partition.fetch.bytes": 1_048_576, "fetch.max.bytes": 52_428_800}


def fill(binary, broker, topic, n, size):
    subprocess.run([binary, "produce", "--bootstrap-server", broker.bootstrap, "--topic", topic, "--count", str(n - 1),
                    "--record-size", str(size), "--acks=-1", "--batch-size", "1000000", "--linger-ms", "5"],
                   check=True, timeout=600, stdout=subprocess.DEVNULL)


def run_kafka_bench(binary, broker, topic, n):
    out = tempfile.mktemp(suffix=".json")
    subprocess.run([binary, "consume", "--bootstrap-server", broker.bootstrap, "--topic", topic, "--count", str(n), "--json", out],
                   check=True, timeout=600)
    result = json.load(open(out))
    return result["records"], result["seconds"]


def run_kcat(broker, topic, n):
    command = ["kcat", "-C", "-b", broker.bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%o\n",
               "-X", f"fetch.message.max.bytes={FETCH['max.partition.fetch.bytes']}", "-X", f"fetch.max.bytes={FETCH['fetch.max.bytes']}"]
    t0 = time.perf_counter()
    result = subprocess.run(command, check=True, timeout=600, stdout=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    return result.stdout.count(b"\n"), elapsed


def run_confluent(broker, topic, n):
    consumer = Consumer(broker.client_config({"group.id": "consumer-compare", "enable.auto.commit": False,
                                               "fetch.message.max.bytes": FETCH["max.partition.fetch.bytes"],
                                               "fetch.max.bytes": FETCH["fetch.max.bytes"]}))
    consumer.assign([TopicPartition(topic, 0, 0)])
    received, t0 = 0, None
    try:
        while received < n:
            messages = consumer.consume(num_messages=10_000, timeout=5)
            if not messages:
                break
            if t0 is None:
                t0 = time.perf_counter()
            received += sum(1 for m in messages if m.error() is None)
        return received, time.perf_counter() - t0
    finally:
        consumer.close()


def main() -> int:
    args = compare.client_compare_arguments(__doc__.split("\n\n")[0])
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        n = 1_000_000 if size <= 1000 else 100_000
        with compare.BrokerProcess("MiniBroker", args.minibroker) as broker:
            topic = f"c-{size}"
            compare.create_topic(broker, topic)
            fill(args.kafka_bench, broker, topic, n, size)
            results = {}
            for name, runner in [("swift (kafka-bench)", lambda: run_kafka_bench(args.kafka_bench, broker, topic, n)),
                                 ("librdkafka (kcat, C)", lambda: run_kcat(broker, topic, n)),
                                 ("librdkafka (confluent-kafka)", lambda: run_confluent(broker, topic, n))]:
                received, seconds = runner()
                assert received == n, f"{name}: read {received} records, expected {n}"
                results[name] = n / seconds
                print(f"{size} B {name}: {n / seconds:.0f} records/s", flush=True)
            ours = results["swift (kafka-bench)"]
            for name, rate in results.items():
                rows.append(f"| {size} B | {name} | {rate:,.0f} | {rate * size / 1e6:,.1f} | {ours / rate:.2f}x |")
    compare.write_table(["record", "consumer", "records/s", "MB/s", "ours / this"], rows, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
