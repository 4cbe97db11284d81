"""kafka-bench's modes against a real broker: what produce reports is in the topic, consume reads exactly
that back (and the same through a group), e2e measures every record it sends."""

import json
import os
import subprocess
import uuid

import pytest

from test_producer import create_topic, read_kafka_python


def kafka_bench(*args, timeout=120):
    path = os.environ.get("KAFKA_BENCH")
    if not path:
        pytest.fail("KAFKA_BENCH is not set: run the interop tests via `make test`.")
    result = subprocess.run([path, *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def run(mode, broker, topic, count, tmp_path, *extra):
    out = tmp_path / f"{mode}.json"
    kafka_bench(mode, "--bootstrap-server", broker.bootstrap, "--topic", topic, "--count", str(count), "--record-size", "64",
                "--json", str(out), *extra)
    return json.loads(out.read_text())


def test_produce_then_consume_reads_exactly_what_was_produced(broker, tmp_path):
    topic = f"bench-{uuid.uuid4().hex[:6]}"
    create_topic(broker.bootstrap, topic, 3)
    produced = run("produce", broker, topic, 2999, tmp_path, "--compression", "lz4")
    assert produced["records"] == 2999 and produced["failed"] == 0 and produced["p99Micros"] > 0
    # The warm-up record plus the counted ones, each with a 64-byte value.
    records = read_kafka_python(broker.bootstrap, topic, 3000)
    assert len(records) == 3000 and all(len(value) == 64 for _, _, value in records)
    consumed = run("consume", broker, topic, 3000, tmp_path)
    assert consumed["records"] == 3000 and consumed["megabytesPerSecond"] > 0 and "p99Micros" not in consumed
    grouped = run("consume", broker, topic, 3000, tmp_path, "--group", f"g-{uuid.uuid4().hex[:6]}")
    assert grouped["records"] == 3000


def test_consume_waits_for_records_not_yet_produced(broker, tmp_path):
    topic = f"short-{uuid.uuid4().hex[:6]}"
    create_topic(broker.bootstrap, topic, 1)
    run("produce", broker, topic, 9, tmp_path)
    path = os.environ["KAFKA_BENCH"]
    # Ten records exist; asking for eleven waits for the eleventh, so it is stopped by the timeout.
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([path, "consume", "--bootstrap-server", broker.bootstrap, "--topic", topic, "--count", "11"],
                       capture_output=True, timeout=5)


def test_end_to_end_latency_of_every_record(broker, tmp_path):
    topic = f"e2e-{uuid.uuid4().hex[:6]}"
    create_topic(broker.bootstrap, topic, 2)
    result = run("e2e", broker, topic, 2000, tmp_path, "--rate", "2000")
    assert result["records"] == 2000 and 0 < result["p50Micros"] <= result["p99Micros"] <= result["maxMicros"]
    # Paced at 2000/s, 2000 records take about a second, not less.
    assert result["seconds"] >= 0.95
    # What the hypervisor took from this machine meanwhile (/proc/stat), to read the latency by.
    assert 0 <= result["stealPercent"] <= 100


def test_duration_partitions_and_rate(broker, tmp_path):
    """--partitions creates the topic (and refuses an existing one of another size), --duration ends a
    run by time, --rate paces produce: each as a kafka-producer-perf-test user would expect."""
    topic = f"timed-{uuid.uuid4().hex[:6]}"
    out = tmp_path / "paced.json"
    kafka_bench("produce", "--bootstrap-server", broker.bootstrap, "--topic", topic, "--partitions", "3",
                "--rate", "2000", "--duration", "1", "--record-size", "64", "--json", str(out))
    paced = json.loads(out.read_text())
    # One second at 2000/s: 2000 records (a chunk at most a millisecond of the rate), taking that second.
    assert 1990 <= paced["records"] <= 2000 and paced["failed"] == 0 and paced["seconds"] >= 0.99
    records = read_kafka_python(broker.bootstrap, topic, paced["records"] + 1)
    assert len(records) == paced["records"] + 1 and {partition for partition, _, _ in records} == {0, 1, 2}

    # Consuming by time reads everything there is (and then waits out the second): not an error.
    out = tmp_path / "timed-consume.json"
    kafka_bench("consume", "--bootstrap-server", broker.bootstrap, "--topic", topic, "--duration", "1", "--json", str(out))
    consumed = json.loads(out.read_text())
    assert consumed["records"] == paced["records"] + 1 and consumed["recordSize"] == 64 and consumed["seconds"] >= 0.99

    # An unpaced produce by time sends until the time is up.
    out = tmp_path / "timed-produce.json"
    kafka_bench("produce", "--bootstrap-server", broker.bootstrap, "--topic", topic, "--duration", "0.5", "--json", str(out))
    timed = json.loads(out.read_text())
    assert timed["records"] > 0 and timed["failed"] == 0 and 0.5 <= timed["seconds"] < 30

    # e2e by time: rate x duration records.
    out = tmp_path / "timed-e2e.json"
    kafka_bench("e2e", "--bootstrap-server", broker.bootstrap, "--topic", f"{topic}-e2e", "--partitions", "2",
                "--rate", "1000", "--duration", "1", "--compression", "zstd", "--json", str(out))
    assert json.loads(out.read_text())["records"] == 1000

    path = os.environ["KAFKA_BENCH"]
    # By time on a topic that stays empty: it ends after the duration, saying why, instead of waiting on.
    empty = subprocess.run([path, "consume", "--bootstrap-server", broker.bootstrap, "--topic", f"{topic}-empty", "--partitions", "1",
                            "--duration", "1"], capture_output=True, text=True, timeout=30)
    assert empty.returncode != 0 and "no records arrived within --duration" in empty.stderr, empty.stderr
    refused = subprocess.run([path, "produce", "--bootstrap-server", broker.bootstrap, "--topic", topic, "--partitions", "4",
                              "--count", "10"], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and f"topic '{topic}' exists with 3 partitions, not the 4 of --partitions" in refused.stderr
    for bad, message in ((["--count", "0"], "--count must be at least 1"), (["--rate", "0"], "--rate must be at least 1"),
                         (["--duration", "0"], "--duration must be a number of seconds above 0")):
        refused = subprocess.run([path, "produce", "--bootstrap-server", broker.bootstrap, *bad], capture_output=True, text=True,
                                 timeout=60)
        assert refused.returncode != 0 and message in refused.stderr, refused.stderr
