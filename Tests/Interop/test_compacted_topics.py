"""Compacted topics as stream processors create them (cleanup.policy=compact): confluent-kafka's admin
client creates one with Kafka's compaction configs and sees them described with their sources; a
keyless record is refused with INVALID_RECORD while keyed records (any codec) are stored and read back
in order; kafka-python's admin client creates one too. (The cleaner that rewrites such topics is the
compaction issue's next step; until then they keep every record, which a consumer rebuilding a table
reads to the same latest value per key.)"""

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import ConfigSource, ResourceType
from kafka import KafkaAdminClient
from kafka.admin import NewTopic as KafkaPythonNewTopic

from clients import (TIMEOUT, assert_config, consume_partition, create_topic, describe_configs, produce, unique_topic,
                     wait_for_topic)


def test_confluent_creates_a_compacted_topic_and_keyless_records_are_refused(broker):
    topic = unique_topic("changelog")
    create_topic(broker.bootstrap, topic, config={"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01",
                                                  "segment.ms": "100", "delete.retention.ms": "1000"})
    entries = describe_configs(broker.bootstrap, ResourceType.TOPIC, topic)
    assert_config(entries, "cleanup.policy", "compact", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert_config(entries, "min.cleanable.dirty.ratio", "0.01", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert_config(entries, "max.compaction.lag.ms", str(2**63 - 1), ConfigSource.DEFAULT_CONFIG)

    refused = produce(broker.bootstrap, topic, [(None, b"no key")], check=False,
                      config={"message.send.max.retries": 0, "enable.idempotence": False})
    assert refused[0].error is not None and refused[0].error.code() == KafkaError.INVALID_RECORD, refused[0].error

    updates = [(f"user-{i % 5}".encode(), f"v{i}".encode()) for i in range(40)]
    for codec in ("none", "gzip", "lz4", "zstd"):
        produce(broker.bootstrap, topic, updates[:10], config={"compression.type": codec})
        updates = updates[10:] + updates[:10]
    records = consume_partition(broker.bootstrap, topic)
    assert len(records) == 40 and all(r.key is not None for r in records)
    table = {}
    for r in records:
        table[r.key] = r.value
    assert sorted(table) == [f"user-{i}".encode() for i in range(5)]


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
