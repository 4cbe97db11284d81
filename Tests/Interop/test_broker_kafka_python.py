"""kafka-python (pure Python: its own protocol code, record encoder and compression) against
MiniBroker.

Proves that KafkaAdminClient creates topics with partitions and configs, describes topic and broker
configs with the right values and sources, adds partitions, deletes topics and records; that
KafkaProducer.send(...).get() is acknowledged at consecutive offsets with every compression codec,
idempotent or not, and the batches are stored with that codec; and that a KafkaConsumer with
assign() + seek_to_beginning() reads everything back (keys, values, headers) in order, and that
partitions_for_topic, beginning_offsets and end_offsets agree with the broker's state.
"""

import time
import warnings

import pytest

from clients import TIMEOUT, broker_id, topic_partitions, wait_for_topic, wait_for_topic_gone
from kafka_raw import assert_stored_codec

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType

TIMEOUT_MS = int(TIMEOUT * 1000)


@pytest.fixture
def admin_client(broker):
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS,
                              bootstrap_timeout_ms=TIMEOUT_MS)
    yield client
    client.close()


def create(admin_client, bootstrap, name, partitions=1, configs=None):
    admin_client.create_topics({name: {"num_partitions": partitions, "replication_factor": 1,
                                       "configs": {k: str(v) for k, v in (configs or {}).items()}}},
                               timeout_ms=TIMEOUT_MS)
    wait_for_topic(bootstrap, name, partitions)


def send_all(bootstrap, topic, records, partition=0, **config):
    """Sends (key, value, headers) records one by one, each acknowledged; returns their offsets."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS,
                             bootstrap_timeout_ms=TIMEOUT_MS, **config)
    try:
        futures = [producer.send(topic, key=k, value=v, headers=h, partition=partition) for k, v, h in records]
        return [f.get(timeout=TIMEOUT).offset for f in futures]
    finally:
        producer.close(timeout=TIMEOUT)


def read_all(bootstrap, topic, count, partition=0):
    """assign() + seek_to_beginning(), then poll until ``count`` records (and no more) arrived."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             request_timeout_ms=TIMEOUT_MS, bootstrap_timeout_ms=TIMEOUT_MS)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        records = []
        deadline = time.monotonic() + TIMEOUT
        while len(records) < count:
            assert time.monotonic() < deadline, f"read {len(records)} of {count} records in {TIMEOUT}s"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        assert consumer.poll(timeout_ms=500) == {}, "more records than were sent"
        return records
    finally:
        consumer.close()


def sample(n):
    return [(b"k%d" % i if i % 4 else None, b"kafka-python value %d " % i * 10,
             [("n", b"%d" % i)] if i % 2 else []) for i in range(n)]


def test_admin_creates_describes_and_deletes_topic(broker, admin_client, topic):
    create(admin_client, broker.bootstrap, topic, partitions=2, configs={"retention.ms": 7200000})
    assert topic in admin_client.list_topics()
    assert sorted(topic_partitions(broker.bootstrap, topic)) == [0, 1]

    described = admin_client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)],
                                              config_filter="all")
    configs = described["topic"][topic]
    assert configs["retention.ms"]["value"] == "7200000"
    assert configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert configs["retention.bytes"]["value"] == "-1"
    assert configs["retention.bytes"]["config_source"] == "DEFAULT_CONFIG"

    admin_client.delete_topics([topic], timeout_ms=TIMEOUT_MS)
    wait_for_topic_gone(broker.bootstrap, topic)
    assert topic not in admin_client.list_topics()


def test_admin_describes_broker_config(broker, admin_client):
    node = str(broker_id(broker.bootstrap))
    described = admin_client.describe_configs([ConfigResource(ConfigResourceType.BROKER, node)],
                                              config_filter="all")
    configs = described["broker"][node]
    assert configs["num.partitions"]["value"] == "1"
    assert configs["num.partitions"]["config_source"] == "DEFAULT_CONFIG"
    assert configs["auto.create.topics.enable"]["value"] == "true"


def test_admin_create_partitions_and_delete_records(broker, admin_client, topic):
    create(admin_client, broker.bootstrap, topic, partitions=1)
    admin_client.create_partitions({topic: 3}, timeout_ms=TIMEOUT_MS)
    wait_for_topic(broker.bootstrap, topic, 3)

    send_all(broker.bootstrap, topic, sample(6))
    tp = TopicPartition(topic, 0)
    result = admin_client.delete_records({tp: 2}, timeout_ms=TIMEOUT_MS)
    assert result[tp]["low_watermark"] == 2
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False)
    try:
        assert consumer.beginning_offsets([tp], timeout_ms=TIMEOUT_MS) == {tp: 2}
        assert consumer.end_offsets([tp], timeout_ms=TIMEOUT_MS) == {tp: 6}
    finally:
        consumer.close()


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
def test_send_get_and_read_back(broker, admin_client, topic, codec):
    create(admin_client, broker.bootstrap, topic)
    records = sample(50)
    offsets = send_all(broker.bootstrap, topic, records, compression_type=codec, linger_ms=20)
    assert offsets == list(range(len(records)))

    got = read_all(broker.bootstrap, topic, len(records))
    assert [r.offset for r in got] == offsets
    assert [(r.key, r.value, [tuple(h) for h in r.headers]) for r in got] == records
    assert_stored_codec(broker.bootstrap, topic, codec or "none")


@pytest.mark.parametrize("idempotent", [True, False])
def test_send_idempotent_or_not(broker, admin_client, topic, idempotent):
    create(admin_client, broker.bootstrap, topic)
    records = sample(300)
    offsets = send_all(broker.bootstrap, topic, records, enable_idempotence=idempotent, acks="all")
    assert offsets == list(range(len(records)))
    assert [r.value for r in read_all(broker.bootstrap, topic, len(records))] == [v for _, v, _ in records]


def test_partitions_and_offsets(broker, admin_client, topic):
    create(admin_client, broker.bootstrap, topic, partitions=3)
    send_all(broker.bootstrap, topic, sample(7), partition=1)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False)
    try:
        assert consumer.partitions_for_topic(topic) == {0, 1, 2}
        tps = [TopicPartition(topic, p) for p in range(3)]
        assert consumer.beginning_offsets(tps, timeout_ms=TIMEOUT_MS) == {tp: 0 for tp in tps}
        assert consumer.end_offsets(tps, timeout_ms=TIMEOUT_MS) == {tps[0]: 0, tps[1]: 7, tps[2]: 0}
    finally:
        consumer.close()
