#!/usr/bin/env python3
"""Time from start to serving for a MiniBroker holding a large log, after a clean stop (issue 7 target:
under 1 s with 5 GB).

Fills one partition with --gigabytes of 10 KB records through kafka-bench (release builds), stops the
broker with SIGTERM (clean shutdown: checkpoints and the clean-shutdown marker), starts it again on the
same data directory and measures until a Metadata request is answered and the last record can be
fetched (the log end is where it was).

    python3 Benchmarks/restart_time.py --gigabytes 5
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from confluent_kafka import Consumer, TopicPartition

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minibroker", default=str(compare.REPO / ".build/release/minibroker"))
    parser.add_argument("--kafka-bench", default=str(compare.REPO / ".build/release/kafka-bench"))
    parser.add_argument("--gigabytes", type=float, default=5.0)
    args = parser.parse_args()
    records = int(args.gigabytes * 1e9 / 10240)
    with compare.BrokerProcess("MiniBroker", os.path.abspath(args.minibroker)) as broker:
        compare.create_topic(broker, "big")
        subprocess.run([os.path.abspath(args.kafka_bench), "produce", "--bootstrap-server", broker.bootstrap, "--topic", "big",
                        "--count", str(records - 1), "--record-size", "10240", "--acks=1", "--disable-idempotence"],
                       check=True, stdout=subprocess.DEVNULL)
        size = sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(broker.base_dir) for f in files)
        command = broker.command
        broker.proc.send_signal(signal.SIGTERM)
        broker.proc.wait(120)
        log = open(broker.log_path, "ab")
        t0 = time.perf_counter()
        broker.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        consumer = None
        while True:
            try:
                consumer = Consumer(broker.client_config({"group.id": "restart-time"}))
                low, high = consumer.get_watermark_offsets(TopicPartition("big", 0), timeout=5)
                break
            except Exception:
                if consumer:
                    consumer.close()
                time.sleep(0.005)
        serving = time.perf_counter() - t0
        consumer.close()
        assert high == records, f"log end {high} after the restart, expected {records}"
        print(f"{size / 1e9:.2f} GB on disk, {records:,} records: serving {serving * 1000:.0f} ms after the start "
              f"(ListOffsets answered with the log end {high:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
