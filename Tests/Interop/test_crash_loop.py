"""Crash safety under repeated SIGKILLs (issue 8): a producer with acks=all and idempotence writes without
pause while the broker is killed at random moments and restarted, again and again.

With log.flush.interval.messages=1 every acknowledged record must be in the log exactly once, in order,
and every batch must pass its CRC (the consumer checks them: check.crcs). With the default flush policy
the same loop must never leave a corrupt batch behind: recovery truncates a torn tail."""

import random
import signal
import threading
import time

from confluent_kafka import Producer

from clients import LOG, consume_partition, create_topic
from test_broker_restart import log_problems

CYCLES = 20
PAD = b"." * 300


def number(value: bytes) -> int:
    return int(value[:8])


def produce_while_killing(broker, topic, cycles, seed):
    """Produces numbered records until `cycles` SIGKILL-and-restart rounds are done, then flushes.
    Returns (numbers acknowledged, delivery errors, records sent)."""
    acked, errors = [], []

    def on_delivery(err, msg):
        (errors if err else acked).append(number(msg.value()) if not err else (number(msg.value()), err))

    producer = Producer({
        "bootstrap.servers": broker.bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 2, "batch.size": 65536,
        "message.timeout.ms": 120_000, "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 200,
        "retry.backoff.ms": 50, "logger": LOG,
    })
    done = threading.Event()
    failure = {}
    statuses = []

    def killer():
        rng = random.Random(seed)
        try:
            for _ in range(cycles):
                time.sleep(rng.uniform(0.05, 0.5))
                statuses.append(broker.restart(hard=True))
        except BaseException as e:  # handed to the test thread
            failure["error"] = e
        finally:
            done.set()

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    sent = 0
    while not done.is_set():
        try:
            producer.produce(topic, value=b"%08d" % sent + PAD, partition=0, on_delivery=on_delivery)
            sent += 1
        except BufferError:
            producer.poll(0.05)
        producer.poll(0)
        if sent % 20 == 0:
            time.sleep(0.004)  # about 5,000 records/s
    thread.join(60)
    if "error" in failure:
        raise failure["error"]
    assert statuses == [-signal.SIGKILL] * cycles, f"exit statuses {statuses}"
    left = producer.flush(120)
    assert left == 0, f"{left} records unacknowledged 120 s after the last restart{broker.log_tail()}"
    return acked, errors, sent


def test_every_acknowledged_record_survives_repeated_sigkills(broker_factory, topic):
    broker = broker_factory(overrides={"log.flush.interval.messages": 1, "log.segment.bytes": 1048576})
    create_topic(broker.bootstrap, topic)
    acked, errors, sent = produce_while_killing(broker, topic, CYCLES, seed=8)
    assert not errors, f"{len(errors)} deliveries failed, first: {errors[:3]}"
    assert sorted(acked) == list(range(sent)) and sent > CYCLES * 50, f"{len(acked)} acks for {sent} records"
    log = [number(r.value) for r in consume_partition(broker.bootstrap, topic, timeout=60, config={"check.crcs": True})]
    assert log == list(range(sent)), log_problems(log, sent)
    print(f"\ncrash loop (flush every message): {CYCLES} SIGKILLs, {sent} records acknowledged, all present once and in order")


def test_default_flush_policy_never_leaves_a_corrupt_batch(broker_factory, topic):
    broker = broker_factory(overrides={"log.segment.bytes": 1048576})
    create_topic(broker.bootstrap, topic)
    produce_while_killing(broker, topic, CYCLES, seed=9)
    broker.restart(hard=True)
    records = consume_partition(broker.bootstrap, topic, timeout=60, config={"check.crcs": True})
    offsets = [r.offset for r in records]
    assert offsets == list(range(len(offsets))), "offsets after recovery have gaps or repeats"
    numbers = [number(r.value) for r in records]
    assert len(set(numbers)) == len(numbers), "a record was written twice"
    print(f"\ncrash loop (default flush): {CYCLES + 1} SIGKILLs, {len(records)} records recovered, every CRC valid")
