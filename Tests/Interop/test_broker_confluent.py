"""confluent-kafka (librdkafka) against MiniBroker: the admin API and the producer/consumer path.

Admin: topics are created with their configs (and validate_only creates nothing), deleted (and
really gone: re-created empty), grown with create_partitions (shrinking is refused); describe_configs
reports topic and broker configs with Kafka's values *and* sources (topic override, static broker
setting from --override or --config, synonym resolution such as log.retention.hours ->
retention.ms, built-in default); alter_configs replaces the whole set, incremental_alter_configs
sets and deletes single keys; describe_cluster shows this one node.

Data: records with keys, headers, null and empty values come back in order with the offsets their
delivery reports gave, for every compression codec (and stored with that codec) and every acks
setting; an idempotent producer writes each record once and in order (batch sequences match
offsets); timestamp and offset look-ups (offsets_for_times, list_offsets with earliest / latest /
max_timestamp / a timestamp, watermarks) agree with what was written; delete_records moves the low
watermark; Metadata with auto-creation creates topics with num.partitions partitions.
"""

import time
import warnings

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewPartitions, NewTopic, OffsetSpec, ResourceType)

from broker import Broker
from clients import (TIMEOUT, admin_call, assert_config, broker_id, consume_partition, consumer_config,
                     create_topic, describe_configs, only, produce, topic_partitions, unique_topic, values,
                     wait_for_high_watermark, wait_for_topic, wait_for_topic_gone, watermarks)
from kafka_raw import assert_stored_codec, stored_batches

KAFKA_DEFAULT_RETENTION_MS = str(7 * 24 * 3600 * 1000)  # log.retention.hours=168

# A second broker whose static settings show up as STATIC_BROKER_CONFIG.
TUNED = {"log.retention.hours": 48, "log.segment.bytes": 2097152, "num.partitions": 3}


@pytest.fixture(scope="module")
def tuned_broker():
    with Broker(overrides=TUNED, name="confluent-tuned") as b:
        yield b


def kafka_error(excinfo) -> KafkaError:
    """The KafkaError carried by a KafkaException raised from an admin future."""
    return excinfo.value.args[0]


def sample_records(n: int) -> list[dict]:
    """Keys (some null), values, headers (on some), and a tombstone and an empty value at the end."""
    records = []
    for i in range(n):
        record = {"key": f"key-{i}".encode() if i % 3 else None, "value": f"value {i} ".encode() * 20}
        if i % 2:
            record["headers"] = [("index", str(i).encode()), ("kind", b"odd")]
        records.append(record)
    records.append({"key": b"tombstone", "value": None})
    records.append({"key": b"empty", "value": b""})
    return records


def as_consumed(records: list[dict]) -> list[tuple]:
    return [(r.get("key"), r.get("value"), r.get("headers", [])) for r in records]


# --------------------------------------------------------------------------------------------
# Admin: topics and partitions
# --------------------------------------------------------------------------------------------

def test_create_topic_with_configs(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=3, config={"retention.ms": 3600000, "segment.bytes": 1048576})
    assert sorted(topic_partitions(broker.bootstrap, topic)) == [0, 1, 2]
    entries = describe_configs(broker.bootstrap, ResourceType.TOPIC, topic)
    assert_config(entries, "retention.ms", "3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert_config(entries, "segment.bytes", "1048576", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert_config(entries, "retention.bytes", "-1", ConfigSource.DEFAULT_CONFIG)


def test_create_topics_validate_only_creates_nothing(broker, topic):
    results = admin_call(broker.bootstrap, "create_topics", [NewTopic(topic, num_partitions=2, replication_factor=1)],
                         validate_only=True)
    assert results == {topic: None}
    assert topic_partitions(broker.bootstrap, topic) is None, "validate_only created the topic"
    create_topic(broker.bootstrap, topic, partitions=2)  # the name is still free


def test_create_existing_topic_is_refused(broker, topic):
    create_topic(broker.bootstrap, topic)
    with pytest.raises(KafkaException) as excinfo:
        admin_call(broker.bootstrap, "create_topics", [NewTopic(topic, 1, 1)])
    assert kafka_error(excinfo).code() == KafkaError.TOPIC_ALREADY_EXISTS


def test_delete_topic_removes_it_and_its_data(broker, topic):
    create_topic(broker.bootstrap, topic)
    produce(broker.bootstrap, topic, [b"a", b"b", b"c"])
    admin_call(broker.bootstrap, "delete_topics", [topic])
    wait_for_topic_gone(broker.bootstrap, topic)
    create_topic(broker.bootstrap, topic)
    assert watermarks(broker.bootstrap, topic) == (0, 0)
    assert consume_partition(broker.bootstrap, topic) == []


def test_delete_unknown_topic_is_refused(broker, topic):
    with pytest.raises(KafkaException) as excinfo:
        admin_call(broker.bootstrap, "delete_topics", [topic])
    assert kafka_error(excinfo).code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_create_partitions_grows_topic(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=1)
    admin_call(broker.bootstrap, "create_partitions", [NewPartitions(topic, 3)])
    wait_for_topic(broker.bootstrap, topic, partitions=3)
    produce(broker.bootstrap, topic, [b"on partition 2"], partition=2)
    assert values(consume_partition(broker.bootstrap, topic, partition=2)) == [b"on partition 2"]

    with pytest.raises(KafkaException) as excinfo:
        admin_call(broker.bootstrap, "create_partitions", [NewPartitions(topic, 2)])
    assert kafka_error(excinfo).code() == KafkaError.INVALID_PARTITIONS
    assert len(topic_partitions(broker.bootstrap, topic)) == 3


def test_describe_cluster_shows_this_node(broker):
    cluster = admin_call(broker.bootstrap, "describe_cluster")
    assert len(cluster.nodes) == 1
    node = cluster.nodes[0]
    assert (node.host, node.port) == ("127.0.0.1", broker.port)
    assert node.id == broker_id(broker.bootstrap)
    assert cluster.controller is not None and cluster.controller.id == node.id
    assert cluster.cluster_id


def test_metadata_auto_creates_topic_with_num_partitions(tuned_broker, topic):
    assert topic_partitions(tuned_broker.bootstrap, topic) is None
    produce(tuned_broker.bootstrap, topic, [b"creates the topic"], partition=None)
    assert sorted(wait_for_topic(tuned_broker.bootstrap, topic)) == [0, 1, 2]


# --------------------------------------------------------------------------------------------
# Admin: configs
# --------------------------------------------------------------------------------------------

def test_describe_topic_config_sources(tuned_broker, topic):
    create_topic(tuned_broker.bootstrap, topic, config={"retention.ms": 3600000})
    plain = create_topic(tuned_broker.bootstrap, unique_topic("plain"))

    entries = describe_configs(tuned_broker.bootstrap, ResourceType.TOPIC, topic)
    assert_config(entries, "retention.ms", "3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert_config(entries, "segment.bytes", "2097152", ConfigSource.STATIC_BROKER_CONFIG)
    assert_config(entries, "retention.bytes", "-1", ConfigSource.DEFAULT_CONFIG)

    # retention.ms inherits the broker's log.retention.hours (a synonym, converted to ms).
    entries = describe_configs(tuned_broker.bootstrap, ResourceType.TOPIC, plain)
    assert_config(entries, "retention.ms", str(48 * 3600 * 1000), ConfigSource.STATIC_BROKER_CONFIG)


def test_describe_broker_configs(tuned_broker):
    entries = describe_configs(tuned_broker.bootstrap, ResourceType.BROKER, str(broker_id(tuned_broker.bootstrap)))
    assert_config(entries, "num.partitions", "3", ConfigSource.STATIC_BROKER_CONFIG)
    assert_config(entries, "log.retention.hours", "48", ConfigSource.STATIC_BROKER_CONFIG)
    assert_config(entries, "log.segment.bytes", "2097152", ConfigSource.STATIC_BROKER_CONFIG)
    assert_config(entries, "auto.create.topics.enable", "true", ConfigSource.DEFAULT_CONFIG)


def test_config_file_and_override_precedence(broker_factory):
    b = broker_factory(config={"num.partitions": 2, "log.retention.hours": 10},
                       overrides={"log.retention.hours": 20})
    entries = describe_configs(b.bootstrap, ResourceType.BROKER, str(broker_id(b.bootstrap)))
    assert_config(entries, "num.partitions", "2", ConfigSource.STATIC_BROKER_CONFIG)
    assert_config(entries, "log.retention.hours", "20", ConfigSource.STATIC_BROKER_CONFIG)


def test_alter_configs_replaces_the_whole_set(broker, topic):
    create_topic(broker.bootstrap, topic, config={"retention.ms": 3600000})
    resource = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.bytes": "1048576"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated in favour of incremental
        admin_call(broker.bootstrap, "alter_configs", [resource])
    entries = describe_configs(broker.bootstrap, ResourceType.TOPIC, topic)
    assert_config(entries, "retention.bytes", "1048576", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    # Not in the request, so reverted to the default (Kafka's non-incremental semantics).
    assert_config(entries, "retention.ms", KAFKA_DEFAULT_RETENTION_MS, ConfigSource.DEFAULT_CONFIG)


def test_incremental_alter_configs_set_and_delete(broker, topic):
    create_topic(broker.bootstrap, topic, config={"segment.bytes": 1048576})

    def alter(op, value, validate_only=False):
        entry = ConfigEntry("retention.ms", value, incremental_operation=op)
        resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
        admin_call(broker.bootstrap, "incremental_alter_configs", [resource], validate_only=validate_only)
        return describe_configs(broker.bootstrap, ResourceType.TOPIC, topic)

    entries = alter(AlterConfigOpType.SET, "123456", validate_only=True)
    assert_config(entries, "retention.ms", KAFKA_DEFAULT_RETENTION_MS, ConfigSource.DEFAULT_CONFIG)

    entries = alter(AlterConfigOpType.SET, "123456")
    assert_config(entries, "retention.ms", "123456", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert_config(entries, "segment.bytes", "1048576", ConfigSource.DYNAMIC_TOPIC_CONFIG)  # untouched

    entries = alter(AlterConfigOpType.DELETE, None)
    assert_config(entries, "retention.ms", KAFKA_DEFAULT_RETENTION_MS, ConfigSource.DEFAULT_CONFIG)
    assert_config(entries, "segment.bytes", "1048576", ConfigSource.DYNAMIC_TOPIC_CONFIG)


@pytest.mark.parametrize("name,value", [("retention.ms", "not-a-number"), ("no.such.config", "1")])
def test_incremental_alter_configs_rejects_invalid_config(broker, topic, name, value):
    create_topic(broker.bootstrap, topic)
    entry = ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    with pytest.raises(KafkaException) as excinfo:
        admin_call(broker.bootstrap, "incremental_alter_configs", [resource])
    assert kafka_error(excinfo).code() == KafkaError.INVALID_CONFIG
    entries = describe_configs(broker.bootstrap, ResourceType.TOPIC, topic)
    assert_config(entries, "retention.ms", KAFKA_DEFAULT_RETENTION_MS, ConfigSource.DEFAULT_CONFIG)


# --------------------------------------------------------------------------------------------
# Producing and consuming
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_records_round_trip_with_codec(broker, topic, codec):
    create_topic(broker.bootstrap, topic)
    records = sample_records(200)
    reports = produce(broker.bootstrap, topic, records, config={"compression.type": codec, "linger.ms": 20})
    assert [r.offset for r in reports] == list(range(len(records)))

    got = consume_partition(broker.bootstrap, topic)
    assert [r.offset for r in got] == list(range(len(records)))
    assert [(r.key, r.value, r.headers) for r in got] == as_consumed(records)
    assert_stored_codec(broker.bootstrap, topic, codec)


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_records_round_trip_with_acks(broker, topic, acks):
    create_topic(broker.bootstrap, topic)
    sent = [f"acks={acks} #{i}".encode() for i in range(100)]
    produce(broker.bootstrap, topic, sent, config={"acks": acks})
    if acks == "0":  # no acknowledgement to wait for: wait until the broker has them all
        wait_for_high_watermark(broker.bootstrap, topic, 0, len(sent))
    assert values(consume_partition(broker.bootstrap, topic)) == sent


def test_assign_at_offset_reads_from_there(broker, topic):
    create_topic(broker.bootstrap, topic)
    sent = [b"%d" % i for i in range(10)]
    produce(broker.bootstrap, topic, sent)
    got = consume_partition(broker.bootstrap, topic, start=6)
    assert [(r.offset, r.value) for r in got] == [(i, sent[i]) for i in range(6, 10)]


def test_idempotent_producer_writes_each_record_once_in_order(broker, topic):
    create_topic(broker.bootstrap, topic)
    sent = [b"idempotent %05d" % i for i in range(2000)]
    reports = produce(broker.bootstrap, topic, sent, config={
        "enable.idempotence": True, "linger.ms": 0, "batch.num.messages": 50,
        "max.in.flight.requests.per.connection": 5})
    assert [(r.offset, r.value) for r in reports] == list(enumerate(sent))
    assert values(consume_partition(broker.bootstrap, topic)) == sent

    batches = stored_batches(broker.bootstrap, topic)
    assert sum(b.record_count for b in batches) == len(sent)
    assert len({(b.producer_id, b.producer_epoch) for b in batches}) == 1 and batches[0].producer_id >= 0
    # One producer from sequence 0 on a fresh partition: each batch's sequence is its offset.
    assert [(b.base_offset, b.base_sequence) for b in batches] == [(b.base_offset, b.base_offset) for b in batches]


def test_offsets_for_times(broker, topic):
    create_topic(broker.bootstrap, topic)
    t0 = int(time.time() * 1000) - 3_600_000
    produce(broker.bootstrap, topic, [{"value": b"%d" % i, "timestamp": t0 + 1000 * i} for i in range(10)])
    assert [r.timestamp for r in consume_partition(broker.bootstrap, topic)] == [t0 + 1000 * i for i in range(10)]

    consumer = Consumer(consumer_config(broker.bootstrap))
    try:
        def offset_for(ts):
            (tp,) = consumer.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=TIMEOUT)
            assert tp.error is None, tp.error
            return tp.offset
        assert offset_for(t0) == 0
        assert offset_for(t0 + 2500) == 3
        assert offset_for(t0 + 9000) == 9
        assert offset_for(t0 + 60_000) == -1  # later than every record
    finally:
        consumer.close()


def test_list_offsets_and_watermarks(broker, topic):
    create_topic(broker.bootstrap, topic)
    t0 = int(time.time() * 1000) - 3_600_000
    stamps = [t0 + 1000, t0 + 5000, t0 + 2000, t0 + 3000]  # the newest is not the last
    produce(broker.bootstrap, topic, [{"value": b"%d" % i, "timestamp": ts} for i, ts in enumerate(stamps)])

    def list_offset(spec):
        return only(admin_call(broker.bootstrap, "list_offsets", {TopicPartition(topic, 0): spec}))

    assert list_offset(OffsetSpec.earliest()).offset == 0
    assert list_offset(OffsetSpec.latest()).offset == 4
    newest = list_offset(OffsetSpec.max_timestamp())
    assert (newest.offset, newest.timestamp) == (1, t0 + 5000)
    # The first offset whose timestamp is >= the target (offset 1's 5000 beats offset 2's 2000).
    assert list_offset(OffsetSpec.for_timestamp(t0 + 2500)).offset == 1
    assert list_offset(OffsetSpec.for_timestamp(t0 + 5001)).offset == -1
    assert watermarks(broker.bootstrap, topic) == (0, 4)


def test_delete_records_moves_low_watermark(broker, topic):
    create_topic(broker.bootstrap, topic)
    sent = [b"%d" % i for i in range(10)]
    produce(broker.bootstrap, topic, sent)

    def delete_before(offset):
        return only(admin_call(broker.bootstrap, "delete_records", [TopicPartition(topic, 0, offset)])).low_watermark

    assert delete_before(4) == 4
    assert watermarks(broker.bootstrap, topic) == (4, 10)
    got = consume_partition(broker.bootstrap, topic, start=OFFSET_BEGINNING)
    assert [(r.offset, r.value) for r in got] == [(i, sent[i]) for i in range(4, 10)]

    with pytest.raises(KafkaException) as excinfo:  # past the high watermark
        delete_before(11)
    assert kafka_error(excinfo).code() == KafkaError.OFFSET_OUT_OF_RANGE

    assert delete_before(-1) == 10  # -1: everything up to the high watermark
    assert watermarks(broker.bootstrap, topic) == (10, 10)
    assert consume_partition(broker.bootstrap, topic) == []
