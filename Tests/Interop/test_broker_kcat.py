"""kcat (Debian's build, its own bundled librdkafka) against MiniBroker.

Proves that kcat's metadata listing shows the broker at its address and the topics with their
partitions, that lines produced with kcat -P (keys split off with -K, to a chosen partition with
-p) come back byte for byte and in order from kcat -C (-o beginning / -o N, -e to stop at the end),
and that with each of -z gzip/snappy/lz4/zstd the records round-trip *and* the broker stored the
batches with that codec (read back by a raw Fetch), so the codec really crossed the wire.
"""

import json
import shutil
import subprocess

import pytest

from clients import broker_id, create_topic
from kafka_raw import assert_stored_codec

KCAT = shutil.which("kcat") or "/usr/bin/kcat"
KCAT_TIMEOUT = 60  # seconds for one kcat run


def kcat(*args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Runs kcat to completion; it must exit 0 within KCAT_TIMEOUT."""
    cmd = [KCAT, *args]
    try:
        done = subprocess.run(cmd, input=stdin, capture_output=True, timeout=KCAT_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{' '.join(cmd)} did not finish within {KCAT_TIMEOUT}s; stderr: "
                             f"{(e.stderr or b'').decode(errors='replace')[-2000:]}")
    assert done.returncode == 0, (f"{' '.join(cmd)} exited {done.returncode}; stderr: "
                                  f"{done.stderr.decode(errors='replace')[-2000:]}")
    return done


def kcat_produce(bootstrap, topic, lines, partition=0, key_delimiter=None, codec=None):
    args = ["-b", bootstrap, "-P", "-t", topic, "-p", str(partition),
            "-X", "message.timeout.ms=30000", "-X", "linger.ms=50"]
    if key_delimiter:
        args += ["-K", key_delimiter]
    if codec:
        args += ["-z", codec]
    kcat(*args, stdin=b"".join(line + b"\n" for line in lines))


def kcat_consume(bootstrap, topic, partition=0, offset="beginning", count=None) -> list[dict]:
    """kcat -C as JSON lines (topic, partition, offset, key, payload), stopping at the end."""
    args = ["-b", bootstrap, "-C", "-t", topic, "-p", str(partition), "-o", str(offset), "-e", "-J", "-q"]
    if count is not None:
        args += ["-c", str(count)]
    out = kcat(*args).stdout.decode()
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_metadata_lists_broker_and_topics(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=3)
    node = broker_id(broker.bootstrap)

    listing = json.loads(kcat("-b", broker.bootstrap, "-L", "-J").stdout)
    assert [(b["id"], b["name"]) for b in listing["brokers"]] == [(node, broker.bootstrap)]
    topics = {t["topic"]: t for t in listing["topics"]}
    assert topic in topics, f"{topic} missing from kcat -L: {sorted(topics)}"
    partitions = topics[topic]["partitions"]
    assert sorted(p["partition"] for p in partitions) == [0, 1, 2]
    assert all(p["leader"] == node for p in partitions)

    only = json.loads(kcat("-b", broker.bootstrap, "-L", "-J", "-t", topic).stdout)
    assert [t["topic"] for t in only["topics"]] == [topic]


def test_keyed_lines_round_trip_exactly(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=2)
    pairs = [(f"key-{i}", f"value {i} é€ {'x' * i}") for i in range(20)]
    kcat_produce(broker.bootstrap, topic, [f"{k}:{v}".encode() for k, v in pairs],
                 partition=1, key_delimiter=":")

    got = kcat_consume(broker.bootstrap, topic, partition=1)
    assert [(m["key"], m["payload"]) for m in got] == pairs
    assert [m["offset"] for m in got] == list(range(len(pairs)))
    assert all(m["partition"] == 1 for m in got)
    assert kcat_consume(broker.bootstrap, topic, partition=0) == []

    # A start offset in the middle and a count.
    middle = kcat_consume(broker.bootstrap, topic, partition=1, offset=5, count=3)
    assert [(m["offset"], m["key"], m["payload"]) for m in middle] == [
        (5 + i, *pairs[5 + i]) for i in range(3)]


def test_unkeyed_lines_have_null_keys(broker, topic):
    create_topic(broker.bootstrap, topic)
    lines = [b"first", b"second line", b"third"]
    kcat_produce(broker.bootstrap, topic, lines)
    got = kcat_consume(broker.bootstrap, topic)
    assert [(m["key"], m["payload"]) for m in got] == [(None, line.decode()) for line in lines]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_lines_round_trip(broker, topic, codec):
    create_topic(broker.bootstrap, topic)
    # Repetitive lines: librdkafka sends a batch uncompressed when compressing does not pay.
    lines = [f"{codec} line {i:04d} ".encode() + b"the same words again and again " * 4 for i in range(300)]
    kcat_produce(broker.bootstrap, topic, lines, codec=codec)

    got = kcat_consume(broker.bootstrap, topic)
    assert [m["payload"].encode() for m in got] == lines

    assert_stored_codec(broker.bootstrap, topic, codec)
