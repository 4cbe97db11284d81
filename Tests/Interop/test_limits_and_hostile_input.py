"""Limits and hostile input (issue 8): max.connections, connections.max.idle.ms, 1000 concurrent
connections, and 100,000 mutated frames made from real client requests, after which the broker is still
up, its memory bounded, and a normal client works."""

import contextlib
import random
import socket
import struct
import subprocess
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from broker import HOST, free_port
from clients import LOG, consume_partition, create_topic, produce, values
from kafka_raw import (API_VERSIONS, Connection, Reader, api_versions_v3_body, build_batch, parse_api_versions,
                       produce_v3)
from proxy import Proxy

KAFKA_STORAGE_ERROR = 56


def api_versions_ok(conn: Connection) -> bool:
    code, apis = parse_api_versions(conn.request(API_VERSIONS, 3, api_versions_v3_body(), flexible=True), 3)
    return code == 0 and len(apis) > 10


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_max_connections_refuses_one_too_many(broker_factory):
    broker = broker_factory(overrides={"max.connections": 5})
    time.sleep(0.3)  # the fixture's readiness probe has closed its connection
    held = [Connection(broker.bootstrap) for _ in range(5)]
    assert all(api_versions_ok(c) for c in held)
    extra = Connection(broker.bootstrap)
    closed, _ = extra.closed_by_peer(timeout=5)
    assert closed, "a sixth connection was kept open"
    assert "max.connections (5) reached" in broker.log_text()
    held.pop().close()
    time.sleep(0.2)
    with Connection(broker.bootstrap) as again:
        assert api_versions_ok(again), "a slot that was freed is not usable"
    for c in held:
        c.close()


def test_idle_connections_are_closed_after_connections_max_idle_ms(broker_factory):
    broker = broker_factory(overrides={"connections.max.idle.ms": 500})
    idle, busy = Connection(broker.bootstrap), Connection(broker.bootstrap)
    assert api_versions_ok(idle) and api_versions_ok(busy)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:  # one request every 200 ms keeps a connection alive
        assert api_versions_ok(busy)
        time.sleep(0.2)
    closed, _ = idle.closed_by_peer(timeout=3)
    assert closed, "an idle connection outlived connections.max.idle.ms"
    assert api_versions_ok(busy)


def test_a_thousand_concurrent_connections_are_served(broker_factory):
    broker = broker_factory()
    connections = [Connection(broker.bootstrap, timeout=30) for _ in range(1000)]
    try:
        # Every connection has a request in flight at once, then each reads its answer.
        for c in connections:
            c.send_request(API_VERSIONS, 3, api_versions_v3_body(), flexible=True)
        for c in connections:
            reader = Reader(c.recv_frame())
            reader.i32()
            assert parse_api_versions(reader, 3)[0] == 0
        topic = f"busy-{uuid.uuid4().hex[:6]}"
        create_topic(broker.bootstrap, topic)
        assert [m.offset for m in produce(broker.bootstrap, topic, [b"a", b"b"])] == [0, 1]
    finally:
        for c in connections:
            c.close()


class RecordingProxy(Proxy):
    """Keeps every request frame the clients sent."""

    def __init__(self, port, target_port):
        self.frames = []
        super().__init__(port, target_port)

    def on_request(self, data, state):
        pending = state.get("pending", b"") + data
        while len(pending) >= 4 and len(pending) >= 4 + struct.unpack(">i", pending[:4])[0]:
            size = struct.unpack(">i", pending[:4])[0]
            with self.lock:
                self.frames.append(pending[4:4 + size])
            pending = pending[4 + size:]
        state["pending"] = pending
        return True


def record_real_client_requests(broker_factory):
    """A broker behind a recording proxy (which clients keep using: the broker advertises it), and the
    frames real clients sent: producing (idempotent, lz4), a consumer group reading and committing, topic
    administration."""
    proxy_port = free_port()
    broker = broker_factory(overrides={"advertised.listeners": f"PLAINTEXT://{HOST}:{proxy_port}",
                                       "group.initial.rebalance.delay.ms": 0}, start=False)
    broker.start()
    proxy = RecordingProxy(proxy_port, broker.port)
    via = f"{HOST}:{proxy_port}"
    topic = f"corpus-{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=via)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    admin.close()
    producer = Producer({"bootstrap.servers": via, "compression.type": "lz4", "linger.ms": 5, "logger": LOG})
    for i in range(50):
        producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i, headers=[("h", b"x")])
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": via, "group.id": "corpus", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "logger": LOG})
    consumer.subscribe([topic])
    read, deadline = 0, time.monotonic() + 30
    while read < 50 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            read += 1
    consumer.commit(asynchronous=False)
    consumer.close()
    assert read == 50
    with proxy.lock:
        frames = list(proxy.frames)
    return broker, proxy, frames


def mutate(frame: bytes, rng: random.Random) -> bytes:
    """One of: flipped bytes, a length field set negative or absurd, a truncated or padded body, a random
    version. The api key is kept (mostly) so every decoder gets its share."""
    b = bytearray(frame)
    kind = rng.randrange(6)
    if kind == 0:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind in (1, 2) and len(b) > 8:
        at = rng.randrange(4, len(b) - 4)
        b[at:at + 4] = struct.pack(">i", -rng.randint(1, 1 << 31) if kind == 1 else rng.randint(1 << 24, (1 << 31) - 1))
    elif kind == 3:
        del b[rng.randrange(2, len(b)):]
    elif kind == 4:
        b += rng.randbytes(rng.randint(1, 64))
    else:
        b[2:4] = struct.pack(">h", rng.randint(-1, 20))
    return bytes(b)


# An unknown api key: the broker answers everything before it, then closes the connection.
SENTINEL = struct.pack(">hhi", 9999, 0, 1) + struct.pack(">h", -1)


def test_a_hundred_thousand_mutated_frames_do_not_knock_the_broker_over(broker_factory):
    broker, proxy, corpus = record_real_client_requests(broker_factory)
    kinds = {struct.unpack(">h", f[:2])[0] for f in corpus}
    assert len(corpus) >= 30 and len(kinds) >= 10, f"{len(corpus)} frames of api keys {sorted(kinds)}"
    rss_before = rss_kib(broker.pid)
    sent = [0] * 8
    held = [0] * 8  # bursts whose last answer did not come within 3 s (a Fetch or JoinGroup may wait that long)
    failures = []

    def worker(index):
        rng = random.Random(index)
        try:
            for _ in range(625):  # 8 workers x 625 connections x 20 frames = 100,000
                burst = [mutate(rng.choice(corpus), rng) for _ in range(20)]
                with socket.create_connection((HOST, broker.port), timeout=3) as s:
                    try:
                        s.sendall(b"".join(struct.pack(">i", len(f)) + f for f in burst + [SENTINEL]))
                        while s.recv(65536):
                            pass
                    except (ConnectionResetError, BrokenPipeError):
                        pass
                    except socket.timeout:
                        held[index] += 1
                sent[index] += len(burst)
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not failures, failures[:3]
    assert sum(sent) == 100_000
    assert sum(held) < 250, f"{sum(held)} of 5000 connections got no end within 3 s"
    assert broker.running(), f"the broker died{broker.log_tail()}"
    rss_after = rss_kib(broker.pid)
    assert rss_after < max(2 * rss_before, 200 * 1024), f"RSS grew from {rss_before} KiB to {rss_after} KiB"
    # A normal client is served as before.
    topic = f"after-{uuid.uuid4().hex[:6]}"
    create_topic(broker.bootstrap, topic)
    assert [m.offset for m in produce(broker.bootstrap, topic, [b"still", b"here"])] == [0, 1]
    assert values(consume_partition(broker.bootstrap, topic)) == [b"still", b"here"]
    proxy.close()


@contextlib.contextmanager
def data_dir_on_tmpfs(broker, size):
    """A tmpfs of `size` mounted on the data directory of a broker not started yet; afterwards the broker is
    stopped and the tmpfs unmounted (made writable first, should the test have left it read-only)."""
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", broker.data_dir], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a {size} tmpfs for the data directory: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["mount", "-o", "remount,rw", broker.data_dir], capture_output=True)
        broker.stop()
        subprocess.run(["umount", broker.data_dir], check=True)


def test_a_full_disk_gives_kafka_storage_error_and_keeps_serving(broker_factory, topic):
    broker = broker_factory(start=False)
    with data_dir_on_tmpfs(broker, "4m"):
        broker.start()
        create_topic(broker.bootstrap, topic)
        batch = build_batch([b"x" * 1000] * 100)  # about 100 KB
        codes = []
        with Connection(broker.bootstrap) as conn:
            while len(codes) < 100 and (not codes or codes[-1] == 0):  # up to 10 MB into 4 MB
                codes.append(produce_v3(conn, topic, 0, batch)[0])
            assert codes[-1] == KAFKA_STORAGE_ERROR, f"produce answers {codes}"
            written = codes.count(0)
            assert written > 0
            # Later produce requests get the same error; the connection and the broker stay up.
            assert produce_v3(conn, topic, 0, batch)[0] == KAFKA_STORAGE_ERROR
            assert api_versions_ok(conn)
        assert broker.running()
        assert "No space left on device" in broker.log_text()
        # Everything acknowledged before the disk filled is there and intact.
        assert len(consume_partition(broker.bootstrap, topic, config={"check.crcs": True})) == written * 100


def test_a_read_only_data_dir_stops_the_start_with_a_clear_error_and_loses_nothing(broker_factory, topic):
    """As Kafka shuts down when all its log dirs have failed, a broker whose only data directory is
    read-only does not start: it exits non-zero naming the directory, and once the disk is writable
    again everything is there. (A disk that fills while running: the test above.)"""
    broker = broker_factory(start=False)
    with data_dir_on_tmpfs(broker, "16m"):
        broker.start()
        create_topic(broker.bootstrap, topic)
        assert [m.offset for m in produce(broker.bootstrap, topic, [b"kept"])] == [0]
        assert broker.stop() == 0
        subprocess.run(["mount", "-o", "remount,ro", broker.data_dir], check=True)
        result = subprocess.run(broker.command(), capture_output=True, text=True, timeout=30)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output[-2000:]
        assert broker.data_dir in output and "Read-only file system" in output, output[-2000:]
        subprocess.run(["mount", "-o", "remount,rw", broker.data_dir], check=True)
        broker.start()
        assert values(consume_partition(broker.bootstrap, topic)) == [b"kept"]
