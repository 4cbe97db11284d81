#!/usr/bin/env python3
"""The log cleaner on a 1 GB partition, against the same run's disk ceilings, and what it costs the
broker's other traffic.

    python3 Benchmarks/cleaner.py --minibroker .build/release/minibroker --kafka-bench .build/release/kafka-bench

1. Disk ceilings in the data directory's file system: dd writing 1 GiB with fdatasync, and dd reading
   it back with O_DIRECT (the disk) and through the page cache.
2. A release minibroker with the cleaner off; kafka-bench fills the compacted topic `table` with
   --gigabytes of 100 B keyed records cycling through --keys keys (128 MB segments).
3. Baseline: kafka-bench produces 10 KB records to `load` for --seconds, then consumes them all.
4. The broker restarts with the cleaner on: it cleans `table` at once, while kafka-bench produces to
   `load` again for --seconds. Then `table` is made dirty again (another fill, cleaner off), and the
   broker restarts to clean it while kafka-bench consumes `load`; then once more with nothing else.
The cleaner's own log line gives bytes read and written, records and its time. Prints markdown.
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from confluent_kafka.admin import AdminClient, NewTopic

CLEANED = re.compile(r"cleaned table-0: offsets (\d+)-(\d+) mapped \((\d+) keys\), read (\d+) bytes, wrote (\d+), "
                     r"removed (\d+) of (\d+) records, (\d+) → (\d+) segments, dirty ratio ([\d.]+) %, (\d+) ms")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, binary, directory):
        self.binary, self.directory, self.port = binary, directory, free_port()
        self.log_path = os.path.join(os.path.dirname(directory), "broker.log")
        self.proc = None

    def start(self, cleaner: bool):
        log = open(self.log_path, "ab")
        log.write(b"\n===== start\n")
        log.flush()
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--data-dir", self.directory,
                                      "--override", f"log.cleaner.enable={'true' if cleaner else 'false'}",
                                      "--override", "log.cleaner.backoff.ms=100"], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("minibroker did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(120)

    def section(self):
        return open(self.log_path, encoding="utf-8", errors="replace").read().rsplit("===== start", 1)[-1]

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"


def dd(args):
    out = subprocess.run(["dd"] + args, capture_output=True, text=True, check=True).stderr
    seconds = float(re.search(r"copied, ([\d.]+) s", out).group(1))
    copied = int(re.search(r"^(\d+) bytes", out, re.M).group(1))
    return copied / seconds / 1e6


def ceilings(directory):
    path = os.path.join(directory, "dd-ceiling")
    write = dd(["if=/dev/zero", f"of={path}", "bs=1M", "count=1024", "conv=fdatasync"])
    direct = dd([f"if={path}", "of=/dev/null", "bs=1M", "iflag=direct"])
    cached = dd([f"if={path}", "of=/dev/null", "bs=1M"])
    os.remove(path)
    return write, direct, cached


def kafka_bench(binary, broker, mode, topic, *extra):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        args = [binary, mode, "--bootstrap-server", broker.bootstrap, "--topic", topic, "--json", out.name, *extra]
        if mode == "produce":
            args += ["--acks=1", "--disable-idempotence"]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, timeout=1800)
        return json.load(open(out.name))


def fill(args, broker, records):
    return kafka_bench(args.kafka_bench, broker, "produce", "table", "--record-size", "100", "--count", str(records),
                       "--keys", str(args.keys))


def clean_while(broker, load):
    """Starts the broker with the cleaner on, runs `load` at once, waits for the clean; returns
    (the cleaner's figures, the load's result, seconds from start to the clean's end)."""
    started = time.time()
    broker.start(cleaner=True)
    result = load()
    while not CLEANED.search(broker.section()):
        if time.time() - started > 1800:
            raise RuntimeError("no clean within 30 minutes")
        time.sleep(0.2)
    m = CLEANED.search(broker.section())
    figures = dict(zip(["first", "end", "keys", "read", "wrote", "removed", "records", "before", "after", "ratio", "ms"],
                       [float(g) for g in m.groups()]))
    return figures, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minibroker", default=".build/release/minibroker")
    parser.add_argument("--kafka-bench", default=".build/release/kafka-bench")
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each produce load")
    parser.add_argument("--directory", default=None, help="where the data goes (default: a temporary directory)")
    args = parser.parse_args()

    base = tempfile.mkdtemp(prefix="cleaner-bench-", dir=args.directory)
    data = os.path.join(base, "data")
    os.mkdir(data)
    try:
        write, direct, cached = ceilings(base)
        broker = Broker(args.minibroker, data)
        broker.start(cleaner=False)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for f in admin.create_topics([NewTopic("table", 1, 1, config={"cleanup.policy": "compact", "segment.bytes": str(128 << 20)}),
                                      NewTopic("load", 1, 1)]).values():
            f.result(30)
        records = int(args.gigabytes * 1e9 / 118)  # a 100 B value, its key and the record's framing
        filled = fill(args, broker, records)
        baseline_produce = kafka_bench(args.kafka_bench, broker, "produce", "load", "--record-size", "10240",
                                       "--duration", str(args.seconds), "--count", "100000000")
        baseline_consume = kafka_bench(args.kafka_bench, broker, "consume", "load", "--record-size", "10240",
                                       "--count", str(baseline_produce["records"]))
        broker.stop()

        first, produce_during = clean_while(broker, lambda: kafka_bench(
            args.kafka_bench, broker, "produce", "load", "--record-size", "10240", "--duration", str(args.seconds),
            "--count", "100000000"))
        broker.stop()
        broker.start(cleaner=False)
        fill(args, broker, records)
        broker.stop()
        total = baseline_produce["records"] + produce_during["records"]
        second, consume_during = clean_while(broker, lambda: kafka_bench(
            args.kafka_bench, broker, "consume", "load", "--record-size", "10240", "--count", str(total)))
        broker.stop()
        broker.start(cleaner=False)
        fill(args, broker, records)
        broker.stop()
        third, _ = clean_while(broker, lambda: None)
        broker.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)

    print(f"Same run's ceilings: dd write with fdatasync **{write:,.0f} MB/s**, dd read O_DIRECT **{direct:,.0f} MB/s**, "
          f"dd read through the page cache {cached:,.0f} MB/s. Fill: {filled['records']:,} keyed records "
          f"({args.keys:,} keys) at {filled['megabytesPerSecond']:.0f} MB/s of values.\n")
    print("| clean | segments before | records | keys | read | written | time | log MB/s | records/s | read+write MB/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, f in (("1st (while producing 10 KB)", first), ("2nd (while consuming 10 KB)", second), ("3rd (alone)", third)):
        seconds = f["ms"] / 1000
        # The map pass reads the dirty section, the rewrite pass the whole cleanable log: the log's
        # size is what the rewrite read (bytes read minus the map pass's share).
        print(f"| {name} | {f['before']:.0f} | {f['records']:,.0f} | {f['keys']:,.0f} | {f['read'] / 1e6:,.0f} MB | "
              f"{f['wrote'] / 1e6:,.1f} MB | {seconds:.2f} s | {f['read'] / 2 / 1e6 / seconds:,.0f} | "
              f"{f['records'] / seconds:,.0f} | {(f['read'] + f['wrote']) / 1e6 / seconds:,.0f} |")
    print("\n| load (10 KB records, kafka-bench) | alone | while the cleaner runs |")
    print("|---|---:|---:|")
    print(f"| produce | {baseline_produce['megabytesPerSecond']:,.0f} MB/s | {produce_during['megabytesPerSecond']:,.0f} MB/s |")
    print(f"| consume | {baseline_consume['megabytesPerSecond']:,.0f} MB/s | {consume_during['megabytesPerSecond']:,.0f} MB/s |")


if __name__ == "__main__":
    main()
