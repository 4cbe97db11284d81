"""SIGKILL while the log cleaner rewrites a compacted partition of a million keyed records (issue 22).
The records are written with the cleaner off, so that the first clean has all of them to do. Then
20 times: the broker starts with the cleaner on, throttled so that a clean takes seconds, and is
killed at a random moment (mapping the dirty section, writing a cleaned segment, swapping one in);
it starts again with the cleaner off, and kcat, checking every batch's CRC, reads the partition
from the beginning as recovery left it: offsets only increase (no duplicate, no torn segment), and
every key's latest value is there, at the offset it was written at. Whenever a clean got through,
a new wave of updates makes the partition dirty again."""

import random
import subprocess
import time

from confluent_kafka import Producer

from clients import LOG, create_topic

CYCLES = 20
RECORDS = 1_000_000
KEYS = 50_000


def produce_updates(broker, topic, first: int, count: int, rng: random.Random, latest: dict) -> None:
    """Record n updates a random key with value n; ``latest`` maps each key to (offset, value)."""
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 20, "batch.size": 1_000_000,
                         "compression.type": "lz4", "queue.buffering.max.messages": 500_000, "logger": LOG})
    failures = []

    def on_delivery(err, msg):
        if err:
            failures.append(err)
        else:
            latest[msg.key()] = max(latest.get(msg.key(), (-1, b"")), (msg.offset(), msg.value()))

    for n in range(first, first + count):
        while True:
            try:
                producer.produce(topic, key=b"k%05d" % rng.randrange(KEYS), value=b"%07d" % n, partition=0,
                                 on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(120) == 0
    assert not failures, failures[:3]


def read_partition(broker, topic) -> list[tuple[int, bytes, bytes]]:
    """Every record from the beginning, through kcat with CRC checks (a bad batch is an error)."""
    out = subprocess.run(["kcat", "-C", "-b", broker.bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
                          "-X", "check.crcs=true", "-f", "%o %k %s\n"], capture_output=True, timeout=180)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    records = []
    for line in out.stdout.splitlines():
        offset, key, value = line.split(b" ")
        records.append((int(offset), key, value))
    return records


def check(records, latest: dict, cycle: int) -> None:
    offsets = [r[0] for r in records]
    assert all(a < b for a, b in zip(offsets, offsets[1:])), f"cycle {cycle}: offsets not increasing"
    at = {offset: (key, value) for offset, key, value in records}
    missing = [(key, offset) for key, (offset, value) in latest.items() if at.get(offset) != (key, value)]
    assert not missing, f"cycle {cycle}: {len(missing)} keys lost their latest value, e.g. {missing[:3]}"
    newest = {}
    for offset, key, _ in records:
        newest[key] = offset
    assert all(newest[key] == offset for key, (offset, _) in latest.items()), f"cycle {cycle}: a record past a key's latest"


def section(broker) -> str:
    """The broker's log since its last start."""
    return broker.log_text().rsplit("===== start", 1)[-1]


def test_every_keys_latest_value_survives_sigkills_during_cleaning(broker_factory, topic):
    # 1 MB segments; records written with the cleaner off (~13 MB of lz4 batches), then cleaned at
    # 8 MB/s: a clean reads the log twice (mapping, then rewriting), which takes about 3 s, and the
    # kills land in both passes or, now and then, after it.
    broker = broker_factory(overrides={"log.segment.bytes": 1 << 20, "log.cleaner.backoff.ms": 20, "log.cleaner.enable": "false",
                                       "log.cleaner.io.max.bytes.per.second": 8_000_000})
    create_topic(broker.bootstrap, topic, config={"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"})
    rng = random.Random(22)
    latest = {}
    produce_updates(broker, topic, 0, RECORDS, rng, latest)
    written = RECORDS
    assert broker.kill() == -9
    interrupted = 0
    for cycle in range(CYCLES):
        broker.overrides["log.cleaner.enable"] = "true"
        broker.start()
        time.sleep(rng.uniform(0.05, 3.2))
        assert broker.kill() == -9
        completed = "cleaned " + topic + "-0" in section(broker)
        interrupted += not completed
        # What the kill left, as recovery restores it, read with the cleaner off.
        broker.overrides["log.cleaner.enable"] = "false"
        broker.start()
        check(read_partition(broker, topic), latest, cycle)
        if completed:
            # The clean got through: a new wave of updates for the next one.
            produce_updates(broker, topic, written, 500_000, rng, latest)
            written += 500_000
        assert broker.kill() == -9
    assert interrupted >= CYCLES // 3, f"only {interrupted} of {CYCLES} kills interrupted a clean"
    rewrites = broker.log_text().count("rolled back a clean interrupted before it committed")
    assert rewrites >= 2, f"only {rewrites} kills landed while a cleaned segment was being written"
    # At the end the cleaner gets through: one record per key below the active segment.
    broker.overrides["log.cleaner.enable"] = "true"
    broker.overrides["log.cleaner.io.max.bytes.per.second"] = "100000000"
    broker.start()
    deadline = time.monotonic() + 120
    while "cleaned " + topic + "-0" not in section(broker):
        assert time.monotonic() < deadline, "no clean completed in 120 s after the last restart"
        time.sleep(0.5)
    records = read_partition(broker, topic)
    check(records, latest, CYCLES)
    assert len(records) < written // 4, f"{len(records)} records left of {written}: the partition was never cleaned"
