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
