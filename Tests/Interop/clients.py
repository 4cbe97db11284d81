"""Shared client-side helpers for the broker tests, built on confluent-kafka (librdkafka).

Every call is bounded in time: admin futures, flush and poll all take timeouts, and a helper that
runs out of time raises AssertionError saying what it was waiting for. Consumers use assign()
with explicit start offsets and never commit, so no consumer-group API is needed: librdkafka
insists on a group.id and may look for a coordinator in the background, but with assign() and an
explicit (or logical beginning) offset it fetches without one. librdkafka's log goes to Python
logging, which pytest shows for failing tests.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import time
import uuid
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic

TIMEOUT = 30.0  # seconds: the upper bound for any one client operation in these tests
LOG = logging.getLogger("librdkafka")  # passed as "logger" to every client


def unique_topic(hint: str = "t") -> str:
    """A topic name no other test uses: the hint (e.g. the test name) made legal, plus a suffix."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", hint).strip("-.")[:80] or "t"
    return f"{base}-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------------------------
# Admin
# --------------------------------------------------------------------------------------------

def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(TIMEOUT * 1000),
                        "logger": LOG})


def admin_call(bootstrap: str, method: str, *args, timeout: float = TIMEOUT, **kwargs):
    """Calls one AdminClient method and waits for its future(s): a dict of results for a dict of
    futures (the first exception, a KafkaException, propagates), else the single result. The
    client is kept alive until then: librdkafka fails the futures of a destroyed client."""
    client = admin(bootstrap)
    futures = getattr(client, method)(*args, request_timeout=timeout, **kwargs)
    try:
        if isinstance(futures, dict):
            return {key: future.result(timeout=timeout + 5) for key, future in futures.items()}
        return futures.result(timeout=timeout + 5)
    except concurrent.futures.TimeoutError:
        raise AssertionError(f"AdminClient.{method} got no answer within {timeout}s") from None


def only(results: dict):
    """The single value of a one-entry result dict."""
    assert len(results) == 1, results
    return next(iter(results.values()))


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict | None = None,
                 timeout: float = TIMEOUT) -> str:
    """Creates a topic and waits until metadata shows every partition with a leader."""
    new = NewTopic(name, num_partitions=partitions, replication_factor=1,
                   config={k: str(v) for k, v in (config or {}).items()})
    admin_call(bootstrap, "create_topics", [new], timeout=timeout)
    wait_for_topic(bootstrap, name, partitions, timeout)
    return name


def topic_partitions(bootstrap: str, name: str, timeout: float = 10.0) -> dict | None:
    """{partition id: leader id} for a topic per Metadata, or None if the topic is not listed."""
    md = admin(bootstrap).list_topics(timeout=timeout)
    topic = md.topics.get(name)
    if topic is None or topic.error is not None:
        return None
    return {p.id: p.leader for p in topic.partitions.values()}


def wait_for_topic(bootstrap: str, name: str, partitions: int | None = None, timeout: float = TIMEOUT) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = topic_partitions(bootstrap, name)
        if found and all(leader >= 0 for leader in found.values()) and (
                partitions is None or len(found) == partitions):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {name} not ready within {timeout}s: metadata shows {found}")
        time.sleep(0.1)


def wait_for_topic_gone(bootstrap: str, name: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while topic_partitions(bootstrap, name) is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {name} still listed {timeout}s after deletion")
        time.sleep(0.1)


def describe_configs(bootstrap: str, resource_type, name: str, timeout: float = TIMEOUT) -> dict:
    """{config name: ConfigEntry} of one topic or broker resource."""
    resource = ConfigResource(resource_type, name)
    return only(admin_call(bootstrap, "describe_configs", [resource], timeout=timeout))


def config_source(entry) -> ConfigSource:
    """The entry's source as a ConfigSource (librdkafka hands back an int or the enum)."""
    return ConfigSource(entry.source)


def assert_config(entries: dict, name: str, value: str | None, source: ConfigSource) -> None:
    """``entries[name]`` (from describe_configs) has this value and source; a DEFAULT_CONFIG
    entry must also be flagged is_default."""
    assert name in entries, f"{name} not described; got {sorted(entries)}"
    entry = entries[name]
    assert (entry.value, config_source(entry)) == (value, source), (
        f"{name}: got value {entry.value!r} from {config_source(entry).name}, "
        f"expected {value!r} from {source.name}")
    if source == ConfigSource.DEFAULT_CONFIG:
        assert entry.is_default, f"{name} comes from DEFAULT_CONFIG but is_default is false"


def broker_id(bootstrap: str, timeout: float = 10.0) -> int:
    """The node id of the (single) broker, as Metadata reports it."""
    brokers = admin(bootstrap).list_topics(timeout=timeout).brokers
    assert len(brokers) == 1, f"expected one broker in metadata, got {brokers}"
    return next(iter(brokers))


# --------------------------------------------------------------------------------------------
# Producing
# --------------------------------------------------------------------------------------------

@dataclass
class Delivery:
    key: bytes | None
    value: bytes | None
    error: KafkaError | None
    partition: int
    offset: int


def produce(bootstrap: str, topic: str, records, partition: int | None = 0, config: dict | None = None,
            timeout: float = TIMEOUT, check: bool = True) -> list[Delivery]:
    """Produces ``records`` (values, (key, value) pairs or dicts of Producer.produce arguments)
    in order, flushes, and returns the delivery reports in the order they arrived. With
    ``check`` every record must have been delivered without error."""
    conf = {"bootstrap.servers": bootstrap, "linger.ms": 5, "message.timeout.ms": int(timeout * 1000),
            "logger": LOG}
    conf.update(config or {})
    producer = Producer(conf)
    reports: list[Delivery] = []

    def on_delivery(err, msg):
        reports.append(Delivery(msg.key(), msg.value(), err, msg.partition(), msg.offset()))

    count = 0
    for record in records:
        if isinstance(record, dict):
            kwargs = dict(record)
        elif isinstance(record, tuple):
            kwargs = {"key": record[0], "value": record[1]}
        else:
            kwargs = {"value": record}
        if partition is not None:
            kwargs.setdefault("partition", partition)
        while True:
            try:
                producer.produce(topic, on_delivery=on_delivery, **kwargs)
                break
            except BufferError:  # local queue full: serve delivery reports and retry
                producer.poll(0.1)
        producer.poll(0)
        count += 1
    left = producer.flush(timeout)
    if left or len(reports) != count:
        raise AssertionError(f"{left} of {count} records to {topic} not delivered within {timeout}s "
                             f"({len(reports)} delivery reports)")
    if check:
        failed = [r for r in reports if r.error is not None]
        assert not failed, f"{len(failed)} of {count} deliveries to {topic} failed, first: {failed[0].error}"
    return reports


# --------------------------------------------------------------------------------------------
# Consuming
# --------------------------------------------------------------------------------------------

@dataclass
class Record:
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: list = field(default_factory=list)


def consumer_config(bootstrap: str, **extra) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        # Required by librdkafka's consumer; never used: no subscribe(), no commit.
        "group.id": f"interop-assign-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
        "logger": LOG,
    }
    conf.update(extra)
    return conf


def consume_partition(bootstrap: str, topic: str, partition: int = 0, start: int = OFFSET_BEGINNING,
                      timeout: float = TIMEOUT, config: dict | None = None) -> list[Record]:
    """Every record of one partition from ``start`` up to the end (librdkafka's partition-EOF
    event, i.e. the fetch position reached the high watermark)."""
    consumer = Consumer(consumer_config(bootstrap, **(config or {})))
    records: list[Record] = []
    try:
        consumer.assign([TopicPartition(topic, partition, start)])
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{topic}/{partition}: no end of partition within {timeout}s, "
                                     f"{len(records)} records read so far")
            msg = consumer.poll(min(1.0, left))
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return records
                raise AssertionError(f"{topic}/{partition}: consumer error {msg.error()}")
            records.append(Record(msg.offset(), msg.key(), msg.value(), msg.timestamp()[1],
                                  list(msg.headers() or [])))
    finally:
        consumer.close()


def values(records: list[Record]) -> list[bytes | None]:
    return [r.value for r in records]


def watermarks(bootstrap: str, topic: str, partition: int = 0, timeout: float = 10.0) -> tuple[int, int]:
    """(low, high) watermark offsets as the broker reports them (ListOffsets)."""
    consumer = Consumer(consumer_config(bootstrap))
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout, cached=False)
    finally:
        consumer.close()


def wait_for_high_watermark(bootstrap: str, topic: str, partition: int, at_least: int,
                            timeout: float = TIMEOUT) -> int:
    deadline = time.monotonic() + timeout
    while True:
        high = watermarks(bootstrap, topic, partition)[1]
        if high >= at_least:
            return high
        if time.monotonic() > deadline:
            raise AssertionError(f"{topic}/{partition}: high watermark {high} < {at_least} after {timeout}s")
        time.sleep(0.1)

