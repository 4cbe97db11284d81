"""MiniBroker's answers to bad or refused requests, mostly over a raw socket (bytes written with
``struct`` in kafka_raw, so neither a client library's codec nor ours is trusted).

What Kafka does, and so what these tests require:

* ApiVersions at a version the broker does not know (KIP-511): answered, in the v0 format, with
  UNSUPPORTED_VERSION (35) and at least ApiVersions' own version range, so the client can retry
  lower; the connection stays usable. Flexible ApiVersions (v3) gets a response header v0.
* Any other request the broker cannot take -- an unknown API key, an unsupported version of a
  known API, a body it cannot parse -- is not answered: Kafka's SocketServer throws while parsing
  the header/body (``Processor.parseRequestHeader``: InvalidRequestException /
  UnsupportedVersionException) and closes the connection. Client libraries rely on this (e.g.
  Sarama treats an unknown-API-key request as "the broker closes the connection").
* A frame whose size prefix exceeds socket.request.max.bytes (or is negative) closes the
  connection before the body is read (Kafka's InvalidReceiveException; the protocol guide: "any
  request that exceeds this limit will result in the socket being disconnected").
* None of the above takes the broker down: a new connection is served afterwards.
* With auto.create.topics.enable=false, Metadata and Produce for a missing topic give
  UNKNOWN_TOPIC_OR_PARTITION (3) and create nothing; a batch larger than message.max.bytes gives
  MESSAGE_TOO_LARGE (10) and writes nothing.
* Idempotence: a retried batch (same producer id, epoch, sequence) is acknowledged with the
  original offset and stored once; a sequence gap gives OUT_OF_ORDER_SEQUENCE_NUMBER (45).
"""

import os
import struct

import pytest
from confluent_kafka import KafkaError

import kafka_raw as raw
from clients import consume_partition, create_topic, produce, values, watermarks

MESSAGE_MAX_BYTES = 10240
SOCKET_REQUEST_MAX_BYTES = 102400
SERVED_APIS = [raw.PRODUCE, raw.FETCH, raw.LIST_OFFSETS, raw.METADATA, raw.API_VERSIONS, raw.CREATE_TOPICS,
               raw.DELETE_TOPICS, raw.DELETE_RECORDS, raw.INIT_PRODUCER_ID, raw.OFFSET_FOR_LEADER_EPOCH,
               raw.DESCRIBE_CONFIGS, raw.ALTER_CONFIGS, raw.CREATE_PARTITIONS, raw.INCREMENTAL_ALTER_CONFIGS,
               raw.DESCRIBE_CLUSTER]


@pytest.fixture(scope="module")
def broker_overrides():
    return {"auto.create.topics.enable": "false",
            "message.max.bytes": MESSAGE_MAX_BYTES,
            "socket.request.max.bytes": SOCKET_REQUEST_MAX_BYTES}


def assert_still_serving(broker):
    """The process is alive and a new connection gets a well-formed ApiVersions v0 answer."""
    broker.assert_running()
    with raw.Connection(broker.bootstrap) as conn:
        error, apis = raw.parse_api_versions(conn.request(raw.API_VERSIONS, 0, b""), 0)
    assert error == raw.NONE and raw.API_VERSIONS in apis


def assert_closed_without_answer(conn, what):
    closed, sent = conn.closed_by_peer(timeout=10)
    assert closed, f"{what}: connection still open after 10 s (received {sent[:100].hex()})"
    assert sent == b"", f"{what}: expected no answer, got {sent[:200].hex()}"


# --------------------------------------------------------------------------------------------
# ApiVersions
# --------------------------------------------------------------------------------------------

def test_api_versions_at_unknown_version_gets_v0_error_answer(broker):
    with raw.Connection(broker.bootstrap) as conn:
        # As a newer client sends it: ApiVersions is flexible from v3, so header v2 (Kafka picks
        # the header version from the API version, even an unknown one) and a v3-style body.
        reader = conn.request(raw.API_VERSIONS, 99, raw.api_versions_v3_body(), flexible=True)
        error, apis = raw.parse_api_versions(reader, 0)  # v0 layout, nothing left over
        assert error == raw.UNSUPPORTED_VERSION
        assert raw.API_VERSIONS in apis, f"ApiVersions' own range missing: {apis}"
        low, high = apis[raw.API_VERSIONS]
        assert low == 0 and high >= 3

        # The client may now retry at a version both know, on the same connection.
        error, apis = raw.parse_api_versions(conn.request(raw.API_VERSIONS, high, raw.api_versions_v3_body(),
                                                          flexible=high >= 3), high)
        assert error == raw.NONE


def test_api_versions_v3_lists_every_served_api(broker):
    with raw.Connection(broker.bootstrap) as conn:
        # Flexible request (header v2), but the response header stays v0: no tagged-field byte.
        reader = conn.request(raw.API_VERSIONS, 3, raw.api_versions_v3_body(), flexible=True,
                              response_header_flexible=False)
        error, apis = raw.parse_api_versions(reader, 3)
    assert error == raw.NONE
    missing = [key for key in SERVED_APIS if key not in apis]
    assert not missing, f"ApiVersions lacks API keys {missing}: {apis}"
    assert all(low <= high for low, high in apis.values()), apis
    assert apis[raw.FETCH][0] <= 4 <= apis[raw.FETCH][1]
    assert apis[raw.PRODUCE][0] <= 3 <= apis[raw.PRODUCE][1]
    assert apis[raw.API_VERSIONS][0] == 0 and apis[raw.API_VERSIONS][1] >= 3


# --------------------------------------------------------------------------------------------
# Requests the broker cannot take: the connection is closed, the broker lives on
# --------------------------------------------------------------------------------------------

def test_unknown_api_key_closes_connection(broker):
    with raw.Connection(broker.bootstrap) as conn:
        conn.send_request(9999, 0, b"\x00\x00\x00\x00")
        assert_closed_without_answer(conn, "unknown API key 9999")
    assert_still_serving(broker)


def test_unsupported_version_of_known_api_closes_connection(broker):
    with raw.Connection(broker.bootstrap) as conn:
        conn.send_request(raw.METADATA, 99, raw.metadata_v4_body(None, False))
        assert_closed_without_answer(conn, "Metadata v99")
    assert_still_serving(broker)


def test_truncated_request_body_closes_connection(broker):
    with raw.Connection(broker.bootstrap) as conn:
        # Metadata v4: a topic array claiming 5 names, then nothing.
        conn.send_request(raw.METADATA, 4, raw.i32(5))
        assert_closed_without_answer(conn, "truncated Metadata v4 body")
    assert_still_serving(broker)


@pytest.mark.parametrize("size", [SOCKET_REQUEST_MAX_BYTES + 1, 1 << 30, -1], ids=["limit+1", "1GiB", "negative"])
def test_bad_frame_size_closes_connection(broker, size):
    with raw.Connection(broker.bootstrap) as conn:
        # Only the size prefix and a header's worth of bytes: the broker must not wait for the rest.
        conn.send_raw(struct.pack(">i", size) + struct.pack(">hhi", raw.METADATA, 4, 1) + raw.string("x"))
        assert_closed_without_answer(conn, f"frame size {size}")
    assert_still_serving(broker)


def test_request_of_exactly_the_limit_is_served(broker):
    """The limit is inclusive (Kafka refuses only sizes above it): a Metadata request for many
    missing topics, padded to exactly socket.request.max.bytes, is parsed and answered."""
    with raw.Connection(broker.bootstrap) as conn:
        header = raw.request_header(raw.METADATA, 4, 1, conn.client_id, flexible=False)
        room = SOCKET_REQUEST_MAX_BYTES - len(header) - 4 - 1  # topic array count, auto-create flag
        names = []
        while room > 0:  # names of 200 bytes, the last ones sized so the total is exact
            length = room - 2 if room - 2 <= 200 else (100 if room - 2 - 200 < 22 else 200)
            names.append(f"missing-{len(names):05d}-".ljust(length, "x"))
            room -= 2 + length
        assert room == 0
        body = raw.metadata_v4_body(names, allow_auto_topic_creation=False)
        assert len(header) + len(body) == SOCKET_REQUEST_MAX_BYTES
        md = raw.parse_metadata_v4(conn.request(raw.METADATA, 4, body))
    assert sorted(md.topics) == sorted(names)
    assert {t.error for t in md.topics.values()} == {raw.UNKNOWN_TOPIC_OR_PARTITION}


# --------------------------------------------------------------------------------------------
# Missing topics and oversized records
# --------------------------------------------------------------------------------------------

def test_produce_to_missing_topic_without_auto_create(broker, topic):
    reports = produce(broker.bootstrap, topic, [b"nowhere"], check=False,
                      config={"topic.metadata.propagation.max.ms": 1000, "message.timeout.ms": 20000})
    assert [r.error.code() if r.error else None for r in reports] == [KafkaError.UNKNOWN_TOPIC_OR_PART]

    with raw.Connection(broker.bootstrap) as conn:
        # Even when the request allows auto-creation, the broker setting forbids it.
        md = raw.metadata(conn, [topic], allow_auto_topic_creation=True)
        assert md.topics[topic].error == raw.UNKNOWN_TOPIC_OR_PARTITION
        error, _ = raw.produce_v3(conn, topic, 0, raw.build_batch([b"raw"]))
        assert error == raw.UNKNOWN_TOPIC_OR_PARTITION
        assert topic not in raw.metadata(conn, None).topics


def test_record_larger_than_message_max_bytes(broker, topic):
    create_topic(broker.bootstrap, topic)
    big = os.urandom(2 * MESSAGE_MAX_BYTES)  # incompressible, and librdkafka's own limit is 1 MB
    reports = produce(broker.bootstrap, topic, [big], check=False)
    assert [r.error.code() if r.error else None for r in reports] == [KafkaError.MSG_SIZE_TOO_LARGE]

    with raw.Connection(broker.bootstrap) as conn:
        error, _ = raw.produce_v3(conn, topic, 0, raw.build_batch([big]))
        assert error == raw.MESSAGE_TOO_LARGE

    assert watermarks(broker.bootstrap, topic) == (0, 0)
    produce(broker.bootstrap, topic, [b"small enough"])
    assert values(consume_partition(broker.bootstrap, topic)) == [b"small enough"]


# --------------------------------------------------------------------------------------------
# Idempotence, batch by batch
# --------------------------------------------------------------------------------------------

def test_duplicate_idempotent_batch_is_acknowledged_and_stored_once(broker, topic):
    create_topic(broker.bootstrap, topic)
    with raw.Connection(broker.bootstrap) as conn:
        error, producer_id, epoch = raw.init_producer_id_v0(conn)
        assert error == raw.NONE and producer_id >= 0 and epoch >= 0
        first = raw.build_batch([b"a", b"b", b"c"], producer_id, epoch, base_sequence=0)
        assert raw.produce_v3(conn, topic, 0, first) == (raw.NONE, 0)
        assert raw.produce_v3(conn, topic, 0, first) == (raw.NONE, 0), "a retry must get the original offset"
        second = raw.build_batch([b"d"], producer_id, epoch, base_sequence=3)
        assert raw.produce_v3(conn, topic, 0, second) == (raw.NONE, 3)
    assert values(consume_partition(broker.bootstrap, topic)) == [b"a", b"b", b"c", b"d"]


def test_idempotent_sequence_gap_is_out_of_order(broker, topic):
    create_topic(broker.bootstrap, topic)
    with raw.Connection(broker.bootstrap) as conn:
        error, producer_id, epoch = raw.init_producer_id_v0(conn)
        assert error == raw.NONE
        assert raw.produce_v3(conn, topic, 0, raw.build_batch([b"a", b"b"], producer_id, epoch, 0)) == (raw.NONE, 0)
        error, _ = raw.produce_v3(conn, topic, 0, raw.build_batch([b"z"], producer_id, epoch, base_sequence=5))
        assert error == raw.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert values(consume_partition(broker.bootstrap, topic)) == [b"a", b"b"]
