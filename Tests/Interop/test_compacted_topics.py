"""Compacted topics as stream processors, registries and Kafka Connect use them (cleanup.policy=compact),
with real clients against a real broker whose log cleaner runs (log.cleaner.backoff.ms is short here):

- topics are created with Kafka's compaction configs and described with their sources; keyless
  records are refused with INVALID_RECORD;
- keyed updates and tombstones from confluent-kafka and kafka-python, in every codec, are compacted:
  a consumer from the beginning then reads exactly the latest value of each live key, at the offset
  it was written at, and deleted keys disappear once delete.retention.ms has passed;
- an idempotent producer goes on through a clean and a SIGKILL of the broker without a sequence error;
- a consumer group rebuilding a key → value table after a restart gets the table the producer wrote."""

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import ConfigSource, ResourceType
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic as KafkaPythonNewTopic

from clients import (LOG, TIMEOUT, assert_config, consume_partition, create_topic, describe_configs, produce,
                     unique_topic, wait_for_topic)

MARKER = b"~marker"
# Segments roll 200 ms after their first record; a clean is due at 1 % dirty; tombstones go at the
# first clean after the one that found them.
COMPACTED = {"cleanup.policy": "compact", "segment.ms": "200", "min.cleanable.dirty.ratio": "0.01",
             "delete.retention.ms": "0"}


@pytest.fixture(scope="module")
def broker_overrides():
    return {"log.cleaner.backoff.ms": 50}


def latest(deliveries) -> list[tuple[int, bytes, bytes]]:
    """The (offset, key, value) a compacted log keeps: each key's last write, tombstoned keys left out."""
    last = {}
    for offset, key, value in deliveries:
        if key != MARKER:
            last[key] = (offset, key, value)
    return sorted(entry for entry in last.values() if entry[2] is not None)


def wait_until_compacted(bootstrap: str, topic: str, expected, timeout: float = 60.0):
    """Appends markers (so the data leaves the active segment and new dirty data keeps the cleaner
    coming back) until a consumer from the beginning reads exactly ``expected`` besides markers."""
    deadline = time.monotonic() + timeout
    while True:
        produce(bootstrap, topic, [(MARKER, b"m")])
        records = [(r.offset, r.key, r.value) for r in consume_partition(bootstrap, topic) if r.key != MARKER]
        if records == expected:
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"{topic} not compacted within {timeout}s: {len(records)} records, "
                                 f"{len(expected)} expected; first extra: "
                                 f"{next((r for r in records if r not in expected), None)}")
        time.sleep(0.3)


def test_confluent_creates_a_compacted_topic_and_keyless_records_are_refused(broker):
    topic = unique_topic("changelog")
    create_topic(broker.bootstrap, topic, config=COMPACTED)
    entries = describe_configs(broker.bootstrap, ResourceType.TOPIC, topic)
    assert_config(entries, "cleanup.policy", "compact", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert_config(entries, "min.cleanable.dirty.ratio", "0.01", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert_config(entries, "max.compaction.lag.ms", str(2**63 - 1), ConfigSource.DEFAULT_CONFIG)

    refused = produce(broker.bootstrap, topic, [(None, b"no key")], check=False,
                      config={"message.send.max.retries": 0, "enable.idempotence": False})
    assert refused[0].error is not None and refused[0].error.code() == KafkaError.INVALID_RECORD, refused[0].error


def test_keyed_updates_and_tombstones_from_two_clients_in_every_codec_are_compacted(broker):
    topic = unique_topic("table")
    create_topic(broker.bootstrap, topic, config=COMPACTED)
    written = []
    for round_, codec in enumerate(("none", "gzip", "snappy", "lz4", "zstd")):
        updates = [(f"user-{(round_ * 7 + i) % 12}".encode(), f"{codec}-{i}".encode()) for i in range(30)]
        reports = produce(broker.bootstrap, topic, updates, config={"compression.type": codec, "linger.ms": 20})
        written += [(r.offset, r.key, r.value) for r in reports]
        time.sleep(0.25)
    # kafka-python: more updates and the tombstones, lz4 and gzip batches.
    for codec, entries in (("lz4", [(b"user-1", None), (b"user-2", b"kp-2"), (b"user-3", None)]),
                           ("gzip", [(b"user-4", None), (b"user-5", b"kp-5")])):
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=codec, linger_ms=20)
        try:
            futures = [(key, value, producer.send(topic, key=key, value=value, partition=0)) for key, value in entries]
            producer.flush(TIMEOUT)
            written += [(f.get(TIMEOUT).offset, key, value) for key, value, f in futures]
        finally:
            producer.close(TIMEOUT)
        time.sleep(0.25)
    expected = latest(written)
    assert {key for _, key, _ in expected} == {f"user-{i}".encode() for i in range(12)} - {b"user-1", b"user-3", b"user-4"}
    wait_until_compacted(broker.bootstrap, topic, expected)
    assert "cleaned " + topic + "-0" in broker.log_text()


def test_an_idempotent_producer_goes_on_through_a_clean_and_a_sigkill(broker_factory):
    broker = broker_factory(overrides={"log.cleaner.backoff.ms": 50})
    topic = unique_topic("idempotent-table")
    create_topic(broker.bootstrap, topic, config=COMPACTED)
    written, errors = [], []

    def on_delivery(err, msg):
        (errors.append(err) if err else written.append((msg.offset(), msg.key(), msg.value())))

    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5, "message.timeout.ms": 60_000, "retry.backoff.ms": 50, "logger": LOG})

    def send(round_, count=40):
        for i in range(count):
            producer.produce(topic, key=f"k{i % 8}".encode(), value=f"r{round_}-{i}".encode(), partition=0,
                             on_delivery=on_delivery)
        assert producer.flush(60) == 0

    for round_ in range(5):
        send(round_)
        time.sleep(0.25)
    wait_until_compacted(broker.bootstrap, topic, latest(written))
    # The producer's sequence state was rebuilt from a log the cleaner rewrote: it must go on.
    assert broker.restart(hard=True) == -9
    for round_ in range(5, 8):
        send(round_)
        time.sleep(0.25)
    assert not errors, errors[:3]
    wait_until_compacted(broker.bootstrap, topic, latest(written))
    assert "OUT_OF_ORDER_SEQUENCE" not in broker.log_text()


def test_a_consumer_group_rebuilds_the_table_after_a_restart(broker_factory):
    broker = broker_factory(overrides={"log.cleaner.backoff.ms": 50})
    topic = unique_topic("changelog")
    create_topic(broker.bootstrap, topic, config=COMPACTED)
    written = []
    for round_ in range(6):
        updates = [(f"account-{(round_ * 5 + i) % 20}".encode(), f"balance-{round_}-{i}".encode()) for i in range(25)]
        if round_ == 5:
            updates += [(b"account-3", None), (b"account-11", None)]
        written += [(r.offset, r.key, r.value) for r in produce(broker.bootstrap, topic, updates)]
        time.sleep(0.25)
    wait_until_compacted(broker.bootstrap, topic, latest(written))
    broker.restart()

    # As a stream processor restores a state store: a group consumer reads the changelog to its end.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_topic("restore"),
                         "auto.offset.reset": "earliest", "enable.partition.eof": True, "logger": LOG})
    table = {}
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    break
                raise AssertionError(msg.error())
            if msg.key() == MARKER:
                continue
            if msg.value() is None:
                table.pop(msg.key(), None)
            else:
                table[msg.key()] = msg.value()
        else:
            raise AssertionError(f"no end of {topic} within {TIMEOUT}s")
    finally:
        consumer.close()
    assert table == {key: value for _, key, value in latest(written)}
    assert b"account-3" not in table and len(table) == 18


def test_kafka_python_creates_a_compact_delete_topic(broker):
    topic = unique_topic("compact-delete")
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=int(TIMEOUT * 1000))
    try:
        admin.create_topics([KafkaPythonNewTopic(topic, 1, 1, topic_configs={"cleanup.policy": "compact,delete"})])
    finally:
        admin.close()
    wait_for_topic(broker.bootstrap, topic)
    entries = describe_configs(broker.bootstrap, ResourceType.TOPIC, topic)
    assert_config(entries, "cleanup.policy", "compact,delete", ConfigSource.DYNAMIC_TOPIC_CONFIG)
