"""Our producer (driven through `user-events submit`) seen by other clients: every codec is read back by
confluent-kafka and kafka-python, keys land in the Java client's partitions, against MiniBroker and Tansu;
and with idempotence, connections cut while requests are in flight produce neither loss nor duplicates."""

import json
import os
import struct
import subprocess
import uuid
import warnings

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer
from confluent_kafka import TopicPartition as CKTopicPartition

from broker import HOST, Broker, Tansu, free_port
from proxy import Proxy
from test_user_events import user_events

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.partitioner.default import murmur2

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def submit(bootstrap, topic, count, *extra, timeout=180):
    result = subprocess.run([user_events(), "submit", str(count), "--bootstrap-server", bootstrap, "--topic", topic, *extra],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    assert f"delivered {count}, failed 0" in result.stdout, result.stdout
    return result


def create_topic(bootstrap, topic, partitions):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def read_kafka_python(bootstrap, topic, expected):
    """(partition, key, value) of every record, through kafka-python."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10000)
    try:
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
        consumer.seek_to_beginning()
        records = []
        for message in consumer:
            records.append((message.partition, message.key, message.value))
            if len(records) == expected:
                break
        return records
    finally:
        consumer.close()


def read_confluent(bootstrap, topic, expected, partitions):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False})
    try:
        consumer.assign([CKTopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        records = []
        idle = 0
        while len(records) < expected and idle < 20:
            batch = consumer.consume(1000, timeout=0.5)
            idle = idle + 1 if not batch else 0
            for message in batch:
                assert message.error() is None, message.error()
                records.append((message.partition(), message.key(), message.value()))
        return records
    finally:
        consumer.close()


def check_users(records, count):
    ids = set()
    for _, key, value in records:
        event = json.loads(value)
        assert key.decode() == event["id"]
        ids.add(event["id"])
    assert len(records) == count and len(ids) == count


def stored_codecs(broker, topic):
    """The compression codec of every batch in the topic's segment files."""
    codecs = set()
    for name in os.listdir(broker.data_dir):
        if not name.startswith(topic + "-"):
            continue
        directory = os.path.join(broker.data_dir, name)
        for segment in sorted(f for f in os.listdir(directory) if f.endswith(".log")):
            data = open(os.path.join(directory, segment), "rb").read()
            position = 0
            while position + 61 <= len(data):
                length = struct.unpack_from(">i", data, position + 8)[0]
                codecs.add(struct.unpack_from(">h", data, position + 21)[0] & 0x07)
                position += 12 + length
    return codecs


@pytest.mark.parametrize("codec", CODECS)
def test_each_codec_is_read_back_by_other_clients(any_broker, codec):
    topic = f"codec-{codec}-{uuid.uuid4().hex[:6]}"
    create_topic(any_broker.bootstrap, topic, 3)
    submit(any_broker.bootstrap, topic, 300, "--compression", codec)
    check_users(read_kafka_python(any_broker.bootstrap, topic, 300), 300)
    check_users(read_confluent(any_broker.bootstrap, topic, 300, 3), 300)
    if isinstance(any_broker, Broker) and not isinstance(any_broker, Tansu):
        assert stored_codecs(any_broker, topic) == {CODEC_IDS[codec]}


def test_keys_land_in_the_java_clients_partitions(any_broker):
    topic = f"keyed-{uuid.uuid4().hex[:6]}"
    create_topic(any_broker.bootstrap, topic, 6)
    submit(any_broker.bootstrap, topic, 500)
    records = read_kafka_python(any_broker.bootstrap, topic, 500)
    check_users(records, 500)
    # kafka-python's murmur2 is the Java client's DefaultPartitioner hash.
    for partition, key, _ in records:
        assert partition == (murmur2(key) & 0x7FFFFFFF) % 6, key
    assert len({partition for partition, _, _ in records}) == 6


class CuttingProxy(Proxy):
    """Every `every` bytes of answers on a connection, swallows the next answer chunk and cuts both sides:
    the broker wrote those requests, the producer never hears so and retries."""

    def __init__(self, port, target_port, every):
        self.every = every
        self.cuts = 0
        super().__init__(port, target_port)

    def on_answer(self, data, state):
        state["answered"] = state.get("answered", 0) + len(data)
        if state["answered"] <= self.every:
            return True
        with self.lock:
            self.cuts += 1
        return False  # drop this answer and cut


def test_idempotent_retries_after_cut_connections_leave_no_duplicates(broker_factory):
    proxy_port = free_port()
    target = broker_factory(overrides={"advertised.listeners": f"PLAINTEXT://{HOST}:{proxy_port}"}, start=False)
    target.start()
    # Clients learn the proxy's address from Metadata, so every connection goes through it.
    proxy = CuttingProxy(proxy_port, target.port, every=3_000)
    try:
        topic = f"cut-{uuid.uuid4().hex[:6]}"
        create_topic(target.bootstrap, topic, 2)
        submit(f"{HOST}:{proxy_port}", topic, 20_000, "--delivery-timeout-ms", "120000")
        assert proxy.cuts >= 3, f"only {proxy.cuts} connections were cut"
        proxy.every = float("inf")  # the checking consumers read through it undisturbed
        records = read_kafka_python(target.bootstrap, topic, 20_000)
        check_users(records, 20_000)
        # Nothing beyond the 20,000: no duplicate hides behind the count.
        consumer = KafkaConsumer(bootstrap_servers=target.bootstrap)
        try:
            ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(2)])
        finally:
            consumer.close()
        assert sum(ends.values()) == 20_000
    finally:
        proxy.close()
