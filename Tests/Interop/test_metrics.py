"""The Prometheus endpoint (issue 24), scraped during and after a load: the counters moved by what the
load did (records in equals records produced, bytes in equals what the log holds, requests counted by
API and version, errors by code), the gauges say where logs and groups stand (a consumer group's lag is
what it left behind), and the whole answer is valid Prometheus text (parsed by prometheus_client)."""

import socket
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from clients import LOG, TIMEOUT, produce, unique_topic, wait_for_topic


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def metered(broker_factory):
    port = free_port()
    broker = broker_factory(overrides={"metrics.port": port})
    broker.metrics_url = f"http://127.0.0.1:{port}/metrics"
    return broker


def scrape(broker):
    """{(name, frozenset(labels)): value} of every sample, and the families as parsed."""
    with urllib.request.urlopen(broker.metrics_url, timeout=TIMEOUT) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = answer.read().decode()
    families = list(text_string_to_metric_families(text))
    samples = {}
    for family in families:
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, {f.name: f for f in families}


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def consume_group(bootstrap, topic, group, count):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "logger": LOG})
    read = 0
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + TIMEOUT
        while read < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            read += 1
            if read == count:
                consumer.commit(message=msg, asynchronous=False)
    finally:
        consumer.close()
    assert read == count


def test_counters_move_by_what_the_load_did(metered):
    topic = unique_topic("metered")
    before, _ = scrape(metered)
    assert value(before, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic) is None
    produce(metered.bootstrap, topic, [b"v" * 200] * 3000, partition=0)
    produce(metered.bootstrap, topic, [b"w" * 50] * 1000, partition=0, config={"compression.type": "lz4"})
    consume_group(metered.bootstrap, topic, "metered-group", 4000)
    samples, families = scrape(metered)

    assert value(samples, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic) == 4000
    size = value(samples, "kafka_log_log_size", topic=topic, partition="0")
    assert size > 0 and value(samples, "kafka_server_brokertopicmetrics_bytesin_total", topic=topic) == size
    # The consumer read the whole log (at least once; librdkafka may fetch ahead).
    assert value(samples, "kafka_server_brokertopicmetrics_bytesout_total", topic=topic) >= size
    assert value(samples, "kafka_log_log_logendoffset", topic=topic, partition="0") == 4000
    assert value(samples, "kafka_log_log_logstartoffset", topic=topic, partition="0") == 0
    assert value(samples, "kafka_consumergroup_committed_offset", group="metered-group", topic=topic, partition="0") == 4000
    assert value(samples, "kafka_consumergroup_lag", group="metered-group", topic=topic, partition="0") == 0

    # Requests by API and version, with a latency histogram per series.
    produce_requests = {dict(labels)["version"]: v for (name, labels), v in samples.items()
                        if name == "kafka_network_requestmetrics_requests_total" and dict(labels)["request"] == "Produce"}
    assert produce_requests and sum(produce_requests.values()) >= 2
    histogram = families["kafka_network_requestmetrics_totaltime_seconds"]
    assert histogram.type == "histogram" and "TotalTimeMs" in histogram.documentation
    for version, count in produce_requests.items():
        assert value(samples, "kafka_network_requestmetrics_totaltime_seconds_count", request="Produce", version=version) == count
        buckets = sorted((float(dict(labels)["le"]), v) for (name, labels), v in samples.items()
                         if name == "kafka_network_requestmetrics_totaltime_seconds_bucket"
                         and dict(labels)["request"] == "Produce" and dict(labels)["version"] == version)
        assert buckets[-1] == (float("inf"), count) and all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
    assert families["kafka_server_brokertopicmetrics_bytesin"].type == "counter"
    assert "BytesInPerSec" in families["kafka_server_brokertopicmetrics_bytesin"].documentation

    # The lag follows the log: 500 more records nobody read.
    produce(metered.bootstrap, topic, [b"x"] * 500, partition=0)
    later, _ = scrape(metered)
    assert value(later, "kafka_consumergroup_lag", group="metered-group", topic=topic, partition="0") == 500
    assert value(later, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic) == 4500

    # Connections and the process.
    assert value(later, "kafka_server_socket_server_metrics_connection_creation_total") >= 3
    assert value(later, "kafka_server_socket_server_metrics_connection_count") >= 0
    assert value(later, "process_resident_memory_bytes") > 1_000_000
    assert value(later, "process_open_fds") > 3 and value(later, "process_cpu_seconds_total") > 0
    assert value(later, "process_start_time_seconds") > time.time() - 3600


def test_errors_are_counted_by_code_and_a_deleted_topic_leaves_the_answer(metered):
    topic = unique_topic("gone")
    produce(metered.bootstrap, topic, [b"x"] * 10, partition=0)
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": metered.bootstrap, "logger": LOG})
    # A topic created twice: TOPIC_ALREADY_EXISTS, counted for CreateTopics.
    with pytest.raises(Exception) as exists:
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(TIMEOUT)
    assert exists.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    admin.delete_topics([topic])[topic].result(TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while True:
        samples, _ = scrape(metered)
        if value(samples, "kafka_log_log_size", topic=topic, partition="0") is None:
            break
        assert time.monotonic() < deadline, "the deleted topic's gauges stayed"
        time.sleep(0.2)
    assert value(samples, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic) is None
    errors = {(dict(labels)["request"], dict(labels)["error"]): v for (name, labels), v in samples.items()
              if name == "kafka_network_requestmetrics_errors_total"}
    assert errors.get(("CreateTopics", "TOPIC_ALREADY_EXISTS")) == 1, errors


def test_the_endpoint_answers_only_metrics(metered):
    base = metered.metrics_url.rsplit("/", 1)[0]
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(base + "/other", timeout=TIMEOUT)
    assert missing.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as post:
        urllib.request.urlopen(urllib.request.Request(metered.metrics_url, data=b"x", method="POST"), timeout=TIMEOUT)
    assert post.value.code == 405
