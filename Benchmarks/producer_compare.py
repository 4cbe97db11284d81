#!/usr/bin/env python3
"""Our producer (kafka-bench produce) against librdkafka's on the same MiniBroker, same loads.

For each record size a fresh MiniBroker (release build) is started, a one-partition topic per producer is
created, and N records are produced with identical settings: acks=all, idempotence on, linger.ms=5,
batch.size=1,000,000, no compression. librdkafka runs twice: from C through kcat (-P -l, one record per
line, so the line length is the record size) and through confluent-kafka (produce_batch, as in compare.py).
Each producer's end offset must equal N afterwards.

    python3 Benchmarks/producer_compare.py --minibroker .build/release/minibroker --kafka-bench .build/release/kafka-bench
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Consumer, Producer, TopicPartition

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (broker processes and topic creation)

SETTINGS = {"acks": "all", "enable.idempotence": True, "linger.ms": 5, "batch.size": 1_000_000, "compression.type": "none"}


def end_offset(broker, topic):
    consumer = Consumer(broker.client_config({"group.id": "producer-compare"}))
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1]
    finally:
        consumer.close()


def run_kafka_bench(binary, broker, topic, n, size):
    out = tempfile.mktemp(suffix=".json")
    subprocess.run([binary, "produce", "--bootstrap-server", broker.bootstrap, "--topic", topic, "--count", str(n - 1),
                    "--record-size", str(size), "--acks=-1", "--batch-size", "1000000", "--linger-ms", "5", "--json", out],
                   check=True, timeout=600)
    result = json.load(open(out))
    return {"records_per_s": result["recordsPerSecond"], "seconds": result["seconds"], "p99_ms": result["p99Micros"] / 1000}


def run_kcat(broker, topic, n, size):
    path = tempfile.mktemp(suffix=".txt")
    line = b"a" * (size - 1) + b"\n"  # with the newline a line is `size` bytes; kcat sends size-1 value bytes
    with open(path, "wb") as f:
        for _ in range(n):
            f.write(line)
    command = ["kcat", "-P", "-b", broker.bootstrap, "-t", topic, "-p", "0", "-l", path]
    for key, value in SETTINGS.items():
        command += ["-X", f"{key}={value}"]
    command += ["-X", "queue.buffering.max.messages=2000000", "-X", "queue.buffering.max.kbytes=2097151"]
    t0 = time.perf_counter()
    subprocess.run(command, check=True, timeout=600)
    elapsed = time.perf_counter() - t0
    os.unlink(path)
    return {"records_per_s": n / elapsed, "seconds": elapsed, "p99_ms": None}


def run_confluent(broker, topic, n, size):
    producer = Producer(broker.client_config({**SETTINGS, "delivery.report.only.error": True,
                                               "queue.buffering.max.messages": max(n, 100_000),
                                               "queue.buffering.max.kbytes": 2_097_151}))
    producer.list_topics(topic, timeout=30)
    payload = b"a" * size
    failures = []
    t0 = time.perf_counter()
    left = n
    while left:
        chunk = [{"value": payload} for _ in range(min(1000, left))]
        queued = producer.produce_batch(topic, chunk, partition=0, on_delivery=lambda err, msg: failures.append(err))
        left -= queued
        producer.poll(0 if queued == len(chunk) else 0.01)
    assert producer.flush(600) == 0 and not failures, failures[:1]
    elapsed = time.perf_counter() - t0
    return {"records_per_s": n / elapsed, "seconds": elapsed, "p99_ms": None}


def main() -> int:
    args = compare.client_compare_arguments(__doc__.split("\n\n")[0])
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        n = 1_000_000 if size <= 1000 else 100_000
        with compare.BrokerProcess("MiniBroker", args.minibroker) as broker:
            results = {}
            for name, runner in [("swift (kafka-bench)", lambda b, t: run_kafka_bench(args.kafka_bench, b, t, n, size)),
                                 ("librdkafka (kcat, C)", lambda b, t: run_kcat(b, t, n, size)),
                                 ("librdkafka (confluent-kafka)", lambda b, t: run_confluent(b, t, n, size))]:
                topic = f"p-{size}-{len(results)}"
                compare.create_topic(broker, topic)
                result = runner(broker, topic)
                written = end_offset(broker, topic)
                assert written == n, f"{name}: {written} records in the topic, expected {n}"
                results[name] = result
                print(f"{size} B {name}: {result['records_per_s']:.0f} records/s", flush=True)
            ours = results["swift (kafka-bench)"]["records_per_s"]
            for name, result in results.items():
                mb = result["records_per_s"] * size / 1e6
                ratio = ours / result["records_per_s"]
                p99 = f"{result['p99_ms']:.1f}" if result["p99_ms"] is not None else "–"
                rows.append(f"| {size} B | {name} | {result['records_per_s']:,.0f} | {mb:,.1f} | {p99} | {ratio:.2f}x |")
    compare.write_table(["record", "producer", "records/s", "MB/s", "p99 ms", "ours / this"], rows, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
