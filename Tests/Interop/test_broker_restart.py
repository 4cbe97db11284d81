"""MiniBroker's durability across restarts, seen through confluent-kafka.

Proves that a graceful stop (SIGTERM, exit status 0) and a crash (SIGKILL, with
log.flush.interval.messages=1) in the middle of a stream of acks=all idempotent produce requests
lose no acknowledged record and duplicate or reorder none: after the broker comes back on the same
port and data directory, the partition holds every record exactly once, in order, each at the
offset its delivery report gave, across several log segments. Also that topics (partition counts,
configs set at creation and later), deleted topics, log start offsets (delete_records) and the
next offset survive a restart.

Exactly-once across the restart relies on idempotence: the producer re-sends what was in flight
when the connection dropped, and the broker must recognise those batches as duplicates, which
means rebuilding each producer's last sequence numbers from the log when it starts (as Kafka does).
"""

import signal
import threading
import time

import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, ResourceType

from clients import (LOG, TIMEOUT, admin_call, assert_config, consume_partition, create_topic, describe_configs,
                     only, produce, topic_partitions, unique_topic, values, wait_for_topic, watermarks)

FIRST = 300  # acknowledged before anything happens
SECOND = 1500  # produced at a steady pace while the broker restarts
RESTART_AFTER = 100  # acknowledgements of the second phase to wait for before restarting
PAD = b"." * 1000  # ~1 KB records: 1.8 MB spans two 1 MiB segments
SEGMENT_BYTES = 1048576


def record(i: int) -> bytes:
    return b"%08d" % i + PAD


def number(value: bytes) -> int:
    return int(value[:8])


def log_problems(log: list[int], expected: int) -> str:
    """What is wrong with a log that should read 0..expected-1."""
    seen, dups, disorder = set(), [], []
    for pos, n in enumerate(log):
        if n in seen:
            dups.append(n)
        seen.add(n)
        if pos and n <= log[pos - 1]:
            disorder.append((pos, log[pos - 1], n))
    missing = sorted(set(range(expected)) - seen)
    return (f"{len(log)} records; missing {len(missing)} {missing[:10]}, duplicated {len(dups)} {dups[:10]}, "
            f"out of order {len(disorder)} {disorder[:5]}")


def produce_through_restart(broker, topic, hard: bool):
    """Returns (acks [(number, offset)], delivery errors, acks counted when the restart began,
    exit status of the stopped broker)."""
    acked, errors = [], []

    def on_delivery(err, msg):
        if err:
            errors.append((number(msg.value()), err))
        else:
            acked.append((number(msg.value()), msg.offset()))

    producer = Producer({
        "bootstrap.servers": broker.bootstrap, "acks": "all", "enable.idempotence": True,
        "linger.ms": 5, "message.timeout.ms": 90_000,
        "reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 500, "retry.backoff.ms": 100,
        "logger": LOG,
    })

    def send(i):
        while True:
            try:
                producer.produce(topic, value=record(i), partition=0, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)

    for i in range(FIRST):
        send(i)
    assert producer.flush(TIMEOUT) == 0 and len(acked) == FIRST and not errors, (
        f"before the restart: {len(acked)} acks, errors {errors[:3]}")

    state = {}

    def restarter():
        try:
            deadline = time.monotonic() + TIMEOUT
            while len(acked) < FIRST + RESTART_AFTER:
                if time.monotonic() > deadline:
                    raise AssertionError(f"only {len(acked)} acks after {TIMEOUT}s")
                time.sleep(0.005)
            state["acked_at_restart"] = len(acked)
            state["status"] = broker.restart(hard=hard)
        except BaseException as e:  # pytest.fail raises a BaseException; hand it to the test thread
            state["error"] = e

    thread = threading.Thread(target=restarter, daemon=True)
    thread.start()
    for i in range(FIRST, FIRST + SECOND):
        send(i)
        time.sleep(0.002)  # ~3 s of production: the restart lands in the middle
    deadline = time.monotonic() + 2 * TIMEOUT
    while thread.is_alive() and time.monotonic() < deadline:
        producer.poll(0.1)  # keep serving acknowledgements: the restarter counts them
    assert not thread.is_alive(), "restart did not finish"
    if "error" in state:
        raise state["error"]
    left = producer.flush(90)
    assert left == 0, f"{left} records still unacknowledged 90 s after the restart{broker.log_tail()}"
    return acked, errors, state["acked_at_restart"], state["status"]


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_acknowledged_records_survive_restart_mid_production(broker_factory, topic, how):
    hard = how == "sigkill"
    overrides = {"log.segment.bytes": SEGMENT_BYTES}
    if hard:
        overrides["log.flush.interval.messages"] = 1
    broker = broker_factory(overrides=overrides)
    create_topic(broker.bootstrap, topic)

    acked, errors, acked_at_restart, status = produce_through_restart(broker, topic, hard)

    assert status == (-signal.SIGKILL if hard else 0), f"exit status {status} after {how}"
    total = FIRST + SECOND
    assert acked_at_restart < total, "the restart did not happen while records were in flight"
    assert not errors, f"{len(errors)} deliveries failed, first: {errors[:3]}"
    assert sorted(n for n, _ in acked) == list(range(total)), "every record acknowledged once"
    wrong = [(n, offset) for n, offset in acked if offset != n]
    assert not wrong, f"{len(wrong)} acknowledgements at the wrong offset, first {wrong[:5]}"

    log = [number(v) for v in values(consume_partition(broker.bootstrap, topic, timeout=60))]
    assert log == list(range(total)), log_problems(log, total)


def test_sigkill_right_after_acks_loses_nothing(broker_factory, topic):
    broker = broker_factory(overrides={"log.flush.interval.messages": 1, "log.segment.bytes": SEGMENT_BYTES})
    create_topic(broker.bootstrap, topic)
    sent = [record(i) for i in range(1500)]
    produce(broker.bootstrap, topic, sent, config={"acks": "all"})
    assert broker.restart(hard=True) == -signal.SIGKILL
    assert values(consume_partition(broker.bootstrap, topic, timeout=60)) == sent
    assert produce(broker.bootstrap, topic, [b"next"])[0].offset == len(sent)


def test_topics_configs_and_offsets_survive_restart(fresh_broker, topic):
    b = fresh_broker
    create_topic(b.bootstrap, topic, partitions=3, config={"retention.ms": 3600000})
    entry = ConfigEntry("retention.bytes", "1048576", incremental_operation=AlterConfigOpType.SET)
    admin_call(b.bootstrap, "incremental_alter_configs",
               [ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])])
    sent = [b"%d" % i for i in range(6)]
    produce(b.bootstrap, topic, sent, partition=1)
    assert only(admin_call(b.bootstrap, "delete_records", [TopicPartition(topic, 1, 2)])).low_watermark == 2
    gone = create_topic(b.bootstrap, unique_topic("deleted"))
    admin_call(b.bootstrap, "delete_topics", [gone])

    assert b.restart() == 0

    assert sorted(wait_for_topic(b.bootstrap, topic)) == [0, 1, 2]
    assert topic_partitions(b.bootstrap, gone) is None, "a deleted topic came back"
    entries = describe_configs(b.bootstrap, ResourceType.TOPIC, topic)
    assert_config(entries, "retention.ms", "3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert_config(entries, "retention.bytes", "1048576", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert watermarks(b.bootstrap, topic, 1) == (2, 6)
    assert produce(b.bootstrap, topic, [b"after"], partition=1)[0].offset == 6
    assert values(consume_partition(b.bootstrap, topic, partition=1)) == sent[2:] + [b"after"]
