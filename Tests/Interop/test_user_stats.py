"""The services end to end, on our consumer: user-stats stores what user-events sent (1000 users on MiniBroker
and on Tansu, counts checked against an independent count of the events), survives a restart midway, shares
partitions between instances, skips malformed events, and reads what librdkafka (confluent-kafka and kcat)
produced with every codec."""

import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import Producer

from test_producer import create_topic, read_kafka_python, submit


def user_stats():
    path = os.environ.get("USER_STATS")
    if not path:
        pytest.fail("USER_STATS is not set: run the interop tests via `make test`.")
    return path


class Stats:
    """One `user-stats run` process."""

    def __init__(self, broker, topic, db, group="user-stats"):
        self.db = db
        self.log_path = db + f".{uuid.uuid4().hex[:4]}.log"
        self.proc = subprocess.Popen([user_stats(), "run", "--bootstrap-server", broker.bootstrap, "--topic", topic, "--group", group,
                                      "--db", db, "--report-interval", "1", "--http-port", "0"],
                                     stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT)

    def log(self):
        return open(self.log_path, errors="replace").read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(30) == 0, self.log()[-3000:]


def report(db):
    result = subprocess.run([user_stats(), "report", "--db", db], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_for_users(db, count, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(db) and report(db)["totalUsers"] >= count:
            return report(db)
        time.sleep(0.3)
    pytest.fail(f"user-stats stored {report(db)['totalUsers'] if os.path.exists(db) else 0} of {count} users")


def independent_counts(broker, topic, count):
    """Users per city counted from the events themselves (kafka-python)."""
    return Counter(json.loads(value)["address"]["city"] for _, _, value in read_kafka_python(broker.bootstrap, topic, count))


def test_1000_users_with_a_restart_midway(any_broker, tmp_path):
    """On MiniBroker and on Tansu: a restarted user-stats resumes at its commits (nothing counted twice,
    nothing missed) and the report matches a count made from the events themselves."""
    broker = any_broker
    topic = f"users-{uuid.uuid4().hex[:6]}"
    create_topic(broker.bootstrap, topic, 3)
    db = str(tmp_path / "stats.sqlite")
    stats = Stats(broker, topic, db)
    submit(broker.bootstrap, topic, 500)
    wait_for_users(db, 500)
    stats.stop()
    assert "New user inserted: {" in stats.log() and "New report generated" in stats.log()
    submit(broker.bootstrap, topic, 500)  # while user-stats is down
    stats = Stats(broker, topic, db)
    final = wait_for_users(db, 1000)
    time.sleep(1.5)  # nothing beyond 1000 arrives
    stats.stop()
    final = report(db)
    assert final["totalUsers"] == 1000 and final["skippedEvents"] == 0
    counted = {c["city"]: c["users"] for c in final["cities"]}
    assert sum(counted.values()) == 1000
    assert counted == dict(independent_counts(broker, topic, 1000))


def test_instances_in_one_group_share_the_partitions(broker, tmp_path):
    topic = f"shared-{uuid.uuid4().hex[:6]}"
    create_topic(broker.bootstrap, topic, 4)
    group = f"g-{uuid.uuid4().hex[:6]}"
    first, second = Stats(broker, topic, str(tmp_path / "a.sqlite"), group), Stats(broker, topic, str(tmp_path / "b.sqlite"), group)
    try:
        time.sleep(6)  # both joined (initial rebalance delay, then the cooperative hand-over)
        submit(broker.bootstrap, topic, 400)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            totals = [report(s.db)["totalUsers"] if os.path.exists(s.db) else 0 for s in (first, second)]
            if sum(totals) >= 400:
                break
            time.sleep(0.3)
    finally:
        first.stop()
        second.stop()
    totals = [report(s.db)["totalUsers"] for s in (first, second)]
    # Each user in exactly one instance's store, and both instances had a share.
    assert sum(totals) == 400 and min(totals) > 0, totals


def test_malformed_events_are_skipped_and_counted(broker, tmp_path):
    topic = f"bad-{uuid.uuid4().hex[:6]}"
    create_topic(broker.bootstrap, topic, 1)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for value in [b"not json", b'{"id": "x"}', json.dumps({"id": "nope", "address": {"city": "A", "state": "B", "country": "US", "postCode": "1"},
                                                           "datetime": "2026-01-01T00:00:00Z"}).encode()]:
        producer.produce(topic, value=value)
    producer.flush(30)
    submit(broker.bootstrap, topic, 5)
    db = str(tmp_path / "stats.sqlite")
    stats = Stats(broker, topic, db)
    wait_for_users(db, 5)
    time.sleep(1)
    stats.stop()
    final = report(db)
    assert final["totalUsers"] == 5 and final["skippedEvents"] == 3
    assert stats.log().count("skipped a malformed event") == 3


def users(count):
    return [{"id": str(uuid.uuid4()), "address": {"city": "Austin", "state": "TX", "country": "US", "postCode": "78701"},
             "datetime": "2026-11-21T10:00:00.000Z"} for _ in range(count)]


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_reads_what_librdkafka_produced_with_every_codec(broker, tmp_path, codec):
    topic = f"rd-{codec}-{uuid.uuid4().hex[:6]}"
    create_topic(broker.bootstrap, topic, 2)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec, "linger.ms": 20})
    for user in users(150):
        producer.produce(topic, key=user["id"], value=json.dumps(user))
    assert producer.flush(30) == 0
    lines = tmp_path / "users.txt"
    lines.write_text("".join(json.dumps(u) + "\n" for u in users(150)))
    subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", topic, "-z", codec, "-l", str(lines)], check=True, timeout=60)
    db = str(tmp_path / "stats.sqlite")
    stats = Stats(broker, topic, db)
    wait_for_users(db, 300)
    stats.stop()
    assert report(db)["totalUsers"] == 300
