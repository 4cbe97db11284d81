"""The Kafka wire protocol by hand, for tests that must not rely on any codec (ours included).

Framing (int32 size prefix), request headers v1/v2, and the few request encoders and response
decoders the broker tests need, written with ``struct`` from Kafka's protocol guide and the
message specs (shared/kafka-protocol): ApiVersions v0/v3, Metadata v4, Produce v3, Fetch v4,
InitProducerId v0, and the 61-byte record batch v2 header. Record batches to *send* are built
with kafka-python's record builder, an independent implementation. The encoding primitives and
``Reader`` also serve the fake broker in librdkafka_capture.
"""

from __future__ import annotations

import socket
import struct
import time
import warnings
from dataclasses import dataclass

# API keys
PRODUCE = 0
FETCH = 1
LIST_OFFSETS = 2
METADATA = 3
FIND_COORDINATOR = 10
API_VERSIONS = 18
CREATE_TOPICS = 19
DELETE_TOPICS = 20
DELETE_RECORDS = 21
INIT_PRODUCER_ID = 22
OFFSET_FOR_LEADER_EPOCH = 23
DESCRIBE_CONFIGS = 32
ALTER_CONFIGS = 33
CREATE_PARTITIONS = 37
INCREMENTAL_ALTER_CONFIGS = 44
DESCRIBE_CLUSTER = 60

# Error codes (Kafka's Errors.java: "names can change, codes cannot")
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
UNSUPPORTED_VERSION = 35
OUT_OF_ORDER_SEQUENCE_NUMBER = 45

CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
CODEC_IDS = {name: code for code, name in CODEC_NAMES.items()}


class ConnectionClosed(Exception):
    """The broker closed the connection (EOF or reset) while we expected bytes."""


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------

def i8(v: int) -> bytes:
    return struct.pack(">b", v)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def string(s: str | None) -> bytes:
    """STRING / NULLABLE_STRING: int16 length (-1 for null) and UTF-8 bytes."""
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def bytes_(b: bytes | None) -> bytes:
    """BYTES / NULLABLE_BYTES / RECORDS: int32 length (-1 for null) and the bytes."""
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items, encode) -> bytes:
    """ARRAY: int32 count (-1 for null) and each element."""
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(encode(x) for x in items)


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def compact_array(items, encode) -> bytes:
    """COMPACT_ARRAY: uvarint count + 1 (0 for null) and each element."""
    if items is None:
        return uvarint(0)
    return uvarint(len(items) + 1) + b"".join(encode(x) for x in items)


def compact_string(s: str) -> bytes:
    b = s.encode()
    return uvarint(len(b) + 1) + b


NO_TAGGED_FIELDS = b"\x00"


def request_header(api_key: int, version: int, correlation_id: int, client_id: str | None,
                   flexible: bool) -> bytes:
    """Request header v1 (v2 when ``flexible``: the same plus an empty tagged-field section)."""
    header = struct.pack(">hhi", api_key, version, correlation_id) + string(client_id)
    return header + (NO_TAGGED_FIELDS if flexible else b"")


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------

class Reader:
    """Big-endian reader over one request or response frame; running off the end is an
    AssertionError."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise AssertionError(f"frame truncated: need {n} bytes at {self.pos}, frame has "
                                 f"{len(self.data)}: {self.data[:200].hex()}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def _unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def i8(self) -> int:
        return self._unpack(">b")

    def i16(self) -> int:
        return self._unpack(">h")

    def i32(self) -> int:
        return self._unpack(">i")

    def i64(self) -> int:
        return self._unpack(">q")

    def boolean(self) -> bool:
        return self.i8() != 0

    def string(self) -> str | None:
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes_(self) -> bytes | None:
        n = self.i32()
        return None if n < 0 else self.take(n)

    def array(self, read) -> list | None:
        n = self.i32()
        return None if n < 0 else [read(self) for _ in range(n)]

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 35:
                raise AssertionError("varint too long")

    def compact_array(self, read) -> list | None:
        n = self.uvarint() - 1
        return None if n < 0 else [read(self) for _ in range(n)]

    def skip_tagged_fields(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            self.take(self.uvarint())

    def remaining(self) -> int:
        return len(self.data) - self.pos


# --------------------------------------------------------------------------------------------
# Connection
# --------------------------------------------------------------------------------------------

class Connection:
    """One TCP connection to the broker, speaking size-prefixed frames."""

    def __init__(self, bootstrap: str, timeout: float = 10.0, client_id: str | None = "minibroker-interop"):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.timeout = timeout
        self.client_id = client_id
        self._next_correlation_id = 1

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, payload: bytes) -> None:
        self.send_raw(i32(len(payload)) + payload)

    def send_request(self, api_key: int, version: int, body: bytes, flexible: bool = False,
                     correlation_id: int | None = None) -> int:
        if correlation_id is None:
            correlation_id = self._next_correlation_id
            self._next_correlation_id += 1
        self.send_frame(request_header(api_key, version, correlation_id, self.client_id, flexible) + body)
        return correlation_id

    def _recv_exact(self, n: int) -> bytes:
        chunks = []
        while n:
            try:
                chunk = self.sock.recv(n)
            except ConnectionResetError as e:
                raise ConnectionClosed(str(e)) from e
            if not chunk:
                raise ConnectionClosed("EOF")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def recv_frame(self) -> bytes:
        (size,) = struct.unpack(">i", self._recv_exact(4))
        assert 0 <= size < 1 << 30, f"implausible response size {size}"
        return self._recv_exact(size)

    def request(self, api_key: int, version: int, body: bytes, flexible: bool = False,
                response_header_flexible: bool | None = None) -> Reader:
        """Sends one request and returns a Reader positioned after the response header, whose
        correlation id must match. The response header is v1 (tagged fields) for flexible
        requests, except for ApiVersions whose response header is always v0."""
        correlation_id = self.send_request(api_key, version, body, flexible)
        reader = Reader(self.recv_frame())
        got = reader.i32()
        assert got == correlation_id, f"correlation id {got}, expected {correlation_id}"
        if response_header_flexible is None:
            response_header_flexible = flexible and api_key != API_VERSIONS
        if response_header_flexible:
            reader.skip_tagged_fields()
        return reader

    def closed_by_peer(self, timeout: float = 10.0) -> tuple[bool, bytes]:
        """Waits up to ``timeout`` for the broker to close the connection. Returns (closed, any
        bytes it sent meanwhile)."""
        received = b""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False, received
                self.sock.settimeout(left)
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True, received
                received += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True, received
        except socket.timeout:
            return False, received
        finally:
            self.sock.settimeout(self.timeout)


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------

def parse_api_versions(reader: Reader, version: int) -> tuple[int, dict[int, tuple[int, int]]]:
    """ApiVersions response body -> (error code, {api key: (min, max)}); checks nothing is left."""
    error = reader.i16()
    if version >= 3:
        def entry(r):
            key, lo, hi = r.i16(), r.i16(), r.i16()
            r.skip_tagged_fields()
            return key, lo, hi
        entries = reader.compact_array(entry)
    else:
        entries = reader.array(lambda r: (r.i16(), r.i16(), r.i16()))
    if version >= 1:
        reader.i32()  # throttle_time_ms
    if version >= 3:
        reader.skip_tagged_fields()
    assert reader.remaining() == 0, f"{reader.remaining()} unexpected bytes after ApiVersions v{version}"
    return error, {key: (lo, hi) for key, lo, hi in entries or []}


def api_versions_v3_body(software_name: str = "minibroker-interop", software_version: str = "1.0") -> bytes:
    return compact_string(software_name) + compact_string(software_version) + NO_TAGGED_FIELDS


def metadata_v4_body(topics: list[str] | None, allow_auto_topic_creation: bool) -> bytes:
    return array(topics, string) + i8(1 if allow_auto_topic_creation else 0)


@dataclass
class TopicMetadata:
    error: int
    partitions: dict[int, tuple[int, int]]  # partition -> (error, leader)


@dataclass
class Metadata:
    brokers: dict[int, tuple[str, int]]  # node id -> (host, port)
    controller_id: int
    topics: dict[str, TopicMetadata]


def parse_metadata_v4(reader: Reader) -> Metadata:
    reader.i32()  # throttle_time_ms
    brokers = reader.array(lambda r: (r.i32(), r.string(), r.i32(), r.string()))
    reader.string()  # cluster_id
    controller_id = reader.i32()

    def partition(r):
        error, index, leader = r.i16(), r.i32(), r.i32()
        r.array(lambda rr: rr.i32())  # replicas
        r.array(lambda rr: rr.i32())  # isr
        return index, (error, leader)

    def topic(r):
        error, name = r.i16(), r.string()
        r.boolean()  # is_internal
        return name, TopicMetadata(error, dict(r.array(partition)))

    topics = dict(reader.array(topic))
    return Metadata({b[0]: (b[1], b[2]) for b in brokers}, controller_id, topics)


def metadata(conn: Connection, topics: list[str] | None, allow_auto_topic_creation: bool = False) -> Metadata:
    return parse_metadata_v4(conn.request(METADATA, 4, metadata_v4_body(topics, allow_auto_topic_creation)))


def produce_v3(conn: Connection, topic: str, partition: int, records: bytes, acks: int = -1,
               timeout_ms: int = 10000) -> tuple[int, int]:
    """One Produce v3 request for one partition -> (error code, base offset)."""
    body = (string(None) + i16(acks) + i32(timeout_ms)
            + array([topic], lambda t: string(t) + array([partition], lambda p: i32(p) + bytes_(records))))
    reader = conn.request(PRODUCE, 3, body)
    results = {}
    for name, partitions in reader.array(lambda r: (r.string(), r.array(
            lambda rr: (rr.i32(), rr.i16(), rr.i64(), rr.i64())))):
        for index, error, base_offset, _log_append_time in partitions:
            results[(name, index)] = (error, base_offset)
    reader.i32()  # throttle_time_ms
    assert (topic, partition) in results, f"no answer for {topic}/{partition}: {results}"
    return results[(topic, partition)]


@dataclass
class FetchedPartition:
    error: int
    high_watermark: int
    records: bytes


def fetch_v4(conn: Connection, topic: str, partition: int, offset: int,
             max_bytes: int = 64 << 20, max_wait_ms: int = 0) -> FetchedPartition:
    body = (i32(-1) + i32(max_wait_ms) + i32(0) + i32(max_bytes) + i8(0)
            + array([topic], lambda t: string(t) + array(
                [partition], lambda p: i32(p) + i64(offset) + i32(max_bytes))))
    reader = conn.request(FETCH, 4, body)
    reader.i32()  # throttle_time_ms

    def part(r):
        index, error, high_watermark = r.i32(), r.i16(), r.i64()
        r.i64()  # last_stable_offset
        r.array(lambda rr: (rr.i64(), rr.i64()))  # aborted transactions
        return index, FetchedPartition(error, high_watermark, r.bytes_() or b"")

    found = {}
    for name, partitions in reader.array(lambda r: (r.string(), r.array(part))):
        for index, data in partitions:
            found[(name, index)] = data
    assert (topic, partition) in found, f"no answer for {topic}/{partition}: {list(found)}"
    return found[(topic, partition)]


def init_producer_id_v0(conn: Connection) -> tuple[int, int, int]:
    """-> (error code, producer id, producer epoch) for a non-transactional producer."""
    reader = conn.request(INIT_PRODUCER_ID, 0, string(None) + i32(60000))
    reader.i32()  # throttle_time_ms
    return reader.i16(), reader.i64(), reader.i16()


# --------------------------------------------------------------------------------------------
# Record batches
# --------------------------------------------------------------------------------------------

_BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")  # the 61-byte record batch v2 header
assert _BATCH_HEADER.size == 61


@dataclass
class BatchHeader:
    base_offset: int
    length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    first_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def codec(self) -> str:
        return CODEC_NAMES.get(self.attributes & 0x07, f"unknown({self.attributes & 0x07})")

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta


def batch_headers(records: bytes) -> list[BatchHeader]:
    """Headers of the complete batches in a RECORDS field (a trailing partial batch, which a
    broker may legally send, is ignored)."""
    headers = []
    pos = 0
    while len(records) - pos >= _BATCH_HEADER.size:
        header = BatchHeader(*_BATCH_HEADER.unpack_from(records, pos))
        end = pos + 12 + header.length
        if end > len(records):
            break
        assert header.magic == 2, f"batch at {pos} has magic {header.magic}"
        headers.append(header)
        pos = end
    return headers


def stored_batches(bootstrap: str, topic: str, partition: int = 0, offset: int = 0,
                   timeout: float = 30.0) -> list[BatchHeader]:
    """The headers of every batch from ``offset`` to the high watermark, by raw Fetch v4 requests
    (one response may stop early, e.g. at a segment end, so fetch on from the last batch)."""
    headers: list[BatchHeader] = []
    deadline = time.monotonic() + timeout
    with Connection(bootstrap) as conn:
        while True:
            fetched = fetch_v4(conn, topic, partition, offset)
            assert fetched.error == NONE, f"fetch {topic}/{partition}@{offset}: error {fetched.error}"
            # A batch may start before the fetch offset (compressed batches are returned whole).
            batches = [b for b in batch_headers(fetched.records) if b.last_offset >= offset]
            headers.extend(batches)
            if batches:
                offset = batches[-1].last_offset + 1
            if offset >= fetched.high_watermark:
                return headers
            assert time.monotonic() < deadline, (
                f"{topic}/{partition}: fetched up to {offset} of {fetched.high_watermark} in {timeout}s")
            if not batches:
                time.sleep(0.05)


def build_batch(values: list[bytes], producer_id: int = -1, producer_epoch: int = -1,
                base_sequence: int = -1, codec: str = "none") -> bytes:
    """A record batch v2 built by kafka-python (offsets from 0, timestamps now)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka.record.default_records import DefaultRecordBatchBuilder
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=CODEC_IDS[codec], is_transactional=False,
                                        producer_id=producer_id, producer_epoch=producer_epoch,
                                        base_sequence=base_sequence, batch_size=1 << 30)
    now = int(time.time() * 1000)
    for offset, value in enumerate(values):
        builder.append(offset, timestamp=now, key=None, value=value, headers=[])
    return bytes(builder.build())


def assert_stored_codec(bootstrap: str, topic: str, codec: str, partition: int = 0) -> None:
    """The partition's batches as stored by the broker use ``codec`` (batches too small to be
    worth compressing may be plain): proof that a producer really sent that codec and that the
    broker kept the producer's compression, as Kafka's compression.type=producer does."""
    codecs = {batch.codec for batch in stored_batches(bootstrap, topic, partition)}
    hint = ""
    if codec == "lz4":
        hint = (" (librdkafka silently sends lz4 batches uncompressed unless the broker's "
                "ApiVersions lists FindCoordinator)")
    if codec == "none":
        assert codecs == {"none"}, f"{topic}/{partition}: stored batch codecs {codecs}, expected none"
    else:
        assert codec in codecs and codecs <= {codec, "none"}, (
            f"{topic}/{partition}: stored batch codecs {codecs}, expected {codec}{hint}")
