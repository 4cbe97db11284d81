"""Record batches across implementations: librdkafka writes, KafkaWire reads; KafkaWire writes,
kafka-python reads. Each of the five compression settings, keys/values/headers including nulls."""

import warnings

import pytest

from kafkawire_tool import CheckTool, tool_path
from librdkafka_capture import capture_batches

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.record.memory_records import MemoryRecords

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
TIMESTAMP = 1_700_000_000_123

# Enough repetition that every codec really compresses (kafka-python would otherwise not care,
# but librdkafka sends small batches uncompressed when compression does not pay).
RECORDS = [
    (b"key-0", b"value-0 " * 40, []),
    (None, b"value-1 no key " * 10, [("h1", b"v1")]),
    (b"key-2", None, [("a", b""), ("b", b"\x00\x01"), ("nullvalue", None)]),
    (None, None, []),
    ("ключ".encode(), "значение ".encode() * 30, [("trace-id", b"abc" * 20)]),
] + [(b"k%d" % i, b"payload %d " % i * 20, []) for i in range(20)]


@pytest.fixture(scope="module")
def tool():
    t = CheckTool(tool_path())
    yield t
    t.close()


def _hex_or_none(b):
    return None if b is None else b.hex()


@pytest.mark.parametrize("codec", CODECS)
def test_librdkafka_batches_decode(tool, codec):
    records = RECORDS
    sets = capture_batches(codec, records, timestamp_ms=TIMESTAMP)
    decoded = []
    for records_bytes in sets:
        answer = tool.ask({"op": "decode_batches", "hex": records_bytes.hex()})
        assert answer["ok"], answer
        in_request = [r for batch in answer["batches"] for r in batch["records"]]
        assert all(batch["compression"] == codec for batch in answer["batches"])
        # librdkafka numbers each request's records from 0; the broker assigns the real offsets.
        assert [r["offset"] for r in in_request] == list(range(len(in_request)))
        decoded.extend(in_request)
    assert len(decoded) == len(records)
    for got, (key, value, headers) in zip(decoded, records):
        assert got["key"] == _hex_or_none(key)
        assert got["value"] == _hex_or_none(value)
        assert [tuple(h) for h in got["headers"]] == [(hk, _hex_or_none(hv)) for hk, hv in headers]
        assert got["timestamp"] == TIMESTAMP


def test_librdkafka_idempotent_batch_header(tool):
    sets = capture_batches("zstd", RECORDS[:3], idempotent=True, timestamp_ms=TIMESTAMP)
    answer = tool.ask({"op": "decode_batches", "hex": sets[0].hex()})
    assert answer["ok"], answer
    batch = answer["batches"][0]
    assert batch["producerId"] >= 0 and batch["producerEpoch"] >= 0 and batch["baseSequence"] == 0
    assert len(batch["records"]) == 3


@pytest.mark.parametrize("codec", CODECS)
def test_our_batches_read_by_kafka_python(tool, codec):
    records = [
        {"offset": 100 + i, "timestamp": TIMESTAMP + i, "key": _hex_or_none(k), "value": _hex_or_none(v),
         "headers": [[hk, _hex_or_none(hv)] for hk, hv in h]}
        for i, (k, v, h) in enumerate(RECORDS)
    ]
    answer = tool.ask({"op": "encode_batch", "compression": codec, "baseOffset": 100, "records": records})
    assert answer["ok"], answer
    memory = MemoryRecords(bytes.fromhex(answer["hex"]))
    batches = []
    while memory.has_next():
        batches.append(memory.next_batch())
    assert len(batches) == 1
    batch = batches[0]
    assert batch.validate_crc()
    assert batch.compression_type == CODECS.index(codec)
    got = list(batch)
    assert len(got) == len(RECORDS)
    for i, (r, (key, value, headers)) in enumerate(zip(got, RECORDS)):
        assert r.offset == 100 + i
        assert r.timestamp == TIMESTAMP + i
        assert r.key == key and r.value == value
        assert list(r.headers) == list(headers)
