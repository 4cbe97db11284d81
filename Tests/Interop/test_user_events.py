"""`user-events submit N` against a real MiniBroker and against Tansu: exactly N valid JSON user events land on the
topic (read back by kafka-python), and an unreachable broker fails fast with a one-line error."""

import json
import os
import subprocess
import time
import uuid
import warnings

import pytest

from broker import free_port

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer, TopicPartition


def user_events():
    path = os.environ.get("USER_EVENTS")
    if not path:
        pytest.fail("USER_EVENTS is not set: run the interop tests via `make test`.")
    return path


def test_submit_1000_users(any_broker):
    broker = any_broker
    topic = f"user-events-{uuid.uuid4().hex[:8]}"
    result = subprocess.run([user_events(), "submit", "1000", "--bootstrap-server", broker.bootstrap, "--topic", topic],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "delivered 1000, failed 0" in result.stdout
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, consumer_timeout_ms=10000)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        events = []
        for message in consumer:
            events.append((message.key, json.loads(message.value)))
            if len(events) == 1000:
                break
    finally:
        consumer.close()
    assert len(events) == 1000
    ids = set()
    for key, event in events:
        assert key.decode() == event["id"]
        uuid.UUID(event["id"])
        assert set(event["address"]) == {"city", "state", "country", "postCode"} and event["address"]["country"] == "US"
        assert event["datetime"].endswith("Z")
        ids.add(event["id"])
    assert len(ids) == 1000


def test_unreachable_broker_fails_fast():
    started = time.monotonic()
    result = subprocess.run([user_events(), "submit", "5", "--bootstrap-server", f"127.0.0.1:{free_port()}",
                             "--delivery-timeout-ms", "3000"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no bootstrap server reachable" in lines[0], result.stderr
    assert time.monotonic() - started < 30
