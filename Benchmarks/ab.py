#!/usr/bin/env python3
"""Two minibroker binaries under the same kafka-bench loads, taking turns: the before/after of a change.

    python3 Benchmarks/ab.py --a /tmp/before/minibroker --b .build/release/minibroker --rounds 3
    python3 Benchmarks/ab.py --a /tmp/before/minibroker --b .build/release/minibroker --b-override metrics.port=0

Each round (the order alternating) starts each broker on a fresh data directory and a free loopback port, then runs, through
kafka-bench (our Swift clients, as compare.py runs them: acks=1, no idempotence, linger 5 ms, 1 MB
batches), produce and consume of 100 B records (5 M) and of 10 KB records (1 GB), times --scale. Prints the median
of each load per broker and the ratio b/a, with the broker's CPU seconds per GB moved (steadier than
throughput on a shared VM), as markdown.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

def cpu_seconds(pid):
    """User plus system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


LOADS = [("100 B", 100, 5_000_000), ("10 KB", 10_240, 100_000)]  # times --scale


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_broker(binary, port, directory, overrides=(), set_port=True):
    """Starts a broker and waits for `port`; set_port=False leaves the listeners to the overrides."""
    extra = [arg for item in overrides for arg in ("--override", item)]
    port_flag = ["--port", str(port)] if set_port else []
    proc = subprocess.Popen([binary, *port_flag, "--data-dir", directory, "--log-level", "warning", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{binary} did not start")


def bench(kafka_bench, port, mode, topic, size, count):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        args = [kafka_bench, mode, "--bootstrap-server", f"127.0.0.1:{port}", "--topic", topic,
                "--record-size", str(size), "--count", str(count), "--json", out.name]
        if mode == "produce":
            args += ["--acks=1", "--disable-idempotence"]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, timeout=600)
        return json.load(open(out.name))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="the broker before")
    parser.add_argument("--b", required=True, help="the broker after")
    parser.add_argument("--kafka-bench", default=".build/release/kafka-bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=int, default=1, help="multiply every load's record count (longer runs, less noise)")
    parser.add_argument("--b-override", action="append", default=[], metavar="KEY=VALUE",
                        help="a broker setting for b only (e.g. metrics.port=0: the same binary with metrics on)")
    args = parser.parse_args()
    results = {}  # (broker, load, mode) -> [MB/s]
    for round in range(args.rounds):
        # Turns alternate, so that neither broker always runs in the wake of the other's writeback.
        order = (("a", args.a), ("b", args.b)) if round % 2 == 0 else (("b", args.b), ("a", args.a))
        for name, binary in order:
            directory = tempfile.mkdtemp(prefix="ab-")
            port = free_port()
            proc = run_broker(binary, port, directory, args.b_override if name == "b" else ())
            try:
                for label, size, count in LOADS:
                    topic = "ab-" + label.replace(" ", "")
                    for mode in ("produce", "consume"):
                        before = cpu_seconds(proc.pid)
                        r = bench(args.kafka_bench, port, mode, topic, size, count * args.scale)
                        # The broker's CPU per GB moved: steadier than throughput on a shared VM.
                        r["brokerCpuSecondsPerGB"] = (cpu_seconds(proc.pid) - before) / (size * count * args.scale / 1e9)
                        results.setdefault((name, label, mode), []).append(r)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
                shutil.rmtree(directory, ignore_errors=True)
    print(f"| load | {os.path.basename(args.a)} (a) | (b) | b/a | broker CPU s/GB a | b | b/a |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, _, _ in LOADS:
        for mode in ("produce", "consume"):
            def median(name, key):
                return statistics.median(r[key] for r in results[(name, label, mode)])
            a, b = median("a", "recordsPerSecond"), median("b", "recordsPerSecond")
            ma, mb = median("a", "megabytesPerSecond"), median("b", "megabytesPerSecond")
            ca, cb = median("a", "brokerCpuSecondsPerGB"), median("b", "brokerCpuSecondsPerGB")
            print(f"| {mode} {label} | {a / 1e6:.2f} M rec/s, {ma:.0f} MB/s | {b / 1e6:.2f} M rec/s, {mb:.0f} MB/s | {b / a:.2f} "
                  f"| {ca:.2f} | {cb:.2f} | {cb / ca:.2f} |")


if __name__ == "__main__":
    main()
