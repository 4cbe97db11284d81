"""Capture the raw record batches librdkafka writes, via a tiny fake broker.

``capture_batches(compression, records)`` starts a minimal in-process Kafka
broker on 127.0.0.1 (ephemeral port), points a ``confluent_kafka.Producer`` at
it, produces the given records to topic "capture" partition 0 and returns the
``records`` field of every Produce request partition it received, i.e. the
exact v2 RecordBatch bytes (possibly several batches concatenated) that
librdkafka put on the wire.

The fake broker speaks just enough of the protocol for a producer:

* ApiVersions v0-3 (v3 body is flexible, response header is always v0)
* Metadata v1-8 (non-flexible), one broker (itself), one topic/partition
* Produce v3-8 (non-flexible), answers error 0 with increasing base offsets
* InitProducerId v0-1 (non-flexible), for ``idempotent=True``

Besides those, it *advertises* (but never expects) Fetch 4-10 and
FindCoordinator 0: librdkafka derives its feature flags from the advertised
ranges, and without them it disables MsgVer2 (Produce>=3 + Fetch>=4),
ZSTD (Produce>=7 + Fetch>=10) and LZ4 (FindCoordinator>=0).

Everything is encoded/decoded by hand with ``struct``.

Run ``python3 librdkafka_capture.py`` for a demo over all five codecs.
"""

from __future__ import annotations

import gc
import socket
import struct
import threading
from typing import Optional

TOPIC = "capture"
HOST = "127.0.0.1"

# API keys
PRODUCE = 0
FETCH = 1
METADATA = 3
FIND_COORDINATOR = 10
API_VERSIONS = 18
INIT_PRODUCER_ID = 22

# (api key, min, max) advertised in ApiVersions. Fetch / FindCoordinator are
# advertised only so librdkafka enables its MsgVer2 / ZSTD / LZ4 features.
_ADVERTISED = [
    (PRODUCE, 3, 8),
    (FETCH, 4, 10),
    (METADATA, 1, 8),
    (FIND_COORDINATOR, 0, 0),
    (API_VERSIONS, 0, 3),
]
_ADVERTISED_IDEMPOTENT = _ADVERTISED + [(INIT_PRODUCER_ID, 0, 1)]

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

ERR_NONE = 0
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_UNSUPPORTED_VERSION = 35

# RecordBatch v2 header layout (offsets into the batch).
_BATCH_LENGTH_OFFSET = 8  # int32, counts bytes after this field
_BATCH_MAGIC_OFFSET = 16
_BATCH_ATTRIBUTES_OFFSET = 21  # int16
_BATCH_LAST_OFFSET_DELTA_OFFSET = 23  # int32
_BATCH_HEADER_SIZE = 61


# --------------------------------------------------------------------------
# Wire helpers
# --------------------------------------------------------------------------


class _Reader:
    """Sequential big-endian reader over one request frame."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"short read: need {n} at {self.pos}/{len(self.data)}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int8(self) -> int:
        return struct.unpack(">b", self._take(1))[0]

    def int16(self) -> int:
        return struct.unpack(">h", self._take(2))[0]

    def int32(self) -> int:
        return struct.unpack(">i", self._take(4))[0]

    def uvarint(self) -> int:
        result = shift = 0
        while True:
            b = self._take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 35:
                raise ValueError("uvarint too long")

    def nullable_string(self) -> Optional[str]:
        n = self.int16()
        return None if n < 0 else self._take(n).decode("utf-8")

    def string(self) -> str:
        s = self.nullable_string()
        if s is None:
            raise ValueError("unexpected null string")
        return s

    def nullable_bytes(self) -> Optional[bytes]:
        n = self.int32()
        return None if n < 0 else self._take(n)

    def skip_tagged_fields(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            self._take(self.uvarint())  # size + data


def _i8(v: int) -> bytes:
    return struct.pack(">b", v)


def _i16(v: int) -> bytes:
    return struct.pack(">h", v)


def _i32(v: int) -> bytes:
    return struct.pack(">i", v)


def _i64(v: int) -> bytes:
    return struct.pack(">q", v)


def _uvarint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _string(s: Optional[str]) -> bytes:
    if s is None:
        return _i16(-1)
    raw = s.encode("utf-8")
    return _i16(len(raw)) + raw


def _array(items: list[bytes]) -> bytes:
    return _i32(len(items)) + b"".join(items)


def _compact_array(items: list[bytes]) -> bytes:
    return _uvarint(len(items) + 1) + b"".join(items)


_EMPTY_TAGS = _uvarint(0)


# --------------------------------------------------------------------------
# Fake broker
# --------------------------------------------------------------------------


class FakeBroker:
    """A single-node fake Kafka broker on 127.0.0.1:<ephemeral port>."""

    NODE_ID = 0

    def __init__(self, idempotent: bool = False, io_timeout: float = 0.2) -> None:
        self.advertised = _ADVERTISED_IDEMPOTENT if idempotent else _ADVERTISED
        self.io_timeout = io_timeout
        self.captured: list[bytes] = []
        # (api_key, api_version, client_id) of every request, in arrival order.
        self.requests: list[tuple[int, int, Optional[str]]] = []
        self.errors: list[str] = []
        self._next_offset = 0
        self._next_producer_id = 1000
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((HOST, 0))
        self._listener.listen(8)
        self._listener.settimeout(io_timeout)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(
            target=self._accept_loop, name="fake-kafka-accept", daemon=True
        )

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> "FakeBroker":
        self._acceptor.start()
        return self

    def stop(self, join_timeout: float = 5.0) -> None:
        self._stop.set()
        self._acceptor.join(join_timeout)
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(join_timeout)
        with self._lock:
            for c in self._conns:
                try:
                    c.close()
                except OSError:
                    pass
            self._conns.clear()
        alive = [t.name for t in [self._acceptor, *threads] if t.is_alive()]
        if alive:
            raise RuntimeError(f"fake broker threads did not stop: {alive}")

    def __enter__(self) -> "FakeBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- networking --------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            conn.settimeout(self.io_timeout)
            t = threading.Thread(
                target=self._serve, args=(conn,), name="fake-kafka-conn", daemon=True
            )
            with self._lock:
                self._conns.append(conn)
                self._threads.append(t)
            t.start()

    def _recv_exact(self, conn: socket.socket, n: int) -> Optional[bytes]:
        """Read exactly n bytes; None on EOF or broker stop."""
        buf = bytearray()
        while len(buf) < n:
            if self._stop.is_set():
                return None
            try:
                chunk = conn.recv(n - len(buf))
            except socket.timeout:
                continue
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _serve(self, conn: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                size_raw = self._recv_exact(conn, 4)
                if size_raw is None:
                    return
                (size,) = struct.unpack(">i", size_raw)
                if size < 0 or size > 64 * 1024 * 1024:
                    self._error(f"bad frame size {size}")
                    return
                frame = self._recv_exact(conn, size)
                if frame is None:
                    return
                response = self._handle(frame)
                if response is None:
                    return  # unsupported request: drop the connection
                conn.settimeout(5.0)
                conn.sendall(_i32(len(response)) + response)
                conn.settimeout(self.io_timeout)
        except Exception as e:  # noqa: BLE001 - report, never hang the client
            self._error(f"connection handler failed: {e!r}")
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _error(self, msg: str) -> None:
        with self._lock:
            self.errors.append(msg)

    # -- request dispatch ----------------------------------------------------

    def _handle(self, frame: bytes) -> Optional[bytes]:
        r = _Reader(frame)
        api_key, version, correlation_id = r.int16(), r.int16(), r.int32()
        client_id = r.nullable_string()
        with self._lock:
            self.requests.append((api_key, version, client_id))

        if api_key == API_VERSIONS:
            # Response header is always v0 for ApiVersions (KIP-511).
            if version >= 3:
                r.skip_tagged_fields()  # request header v2
            return _i32(correlation_id) + self._api_versions(version)

        supported = {k: (lo, hi) for k, lo, hi in self.advertised}
        handlers = {
            METADATA: self._metadata,
            PRODUCE: self._produce,
            INIT_PRODUCER_ID: self._init_producer_id,
        }
        lo_hi = supported.get(api_key)
        handler = handlers.get(api_key)
        if handler is None or lo_hi is None or not lo_hi[0] <= version <= lo_hi[1]:
            self._error(f"unexpected request api_key={api_key} v{version}")
            return None
        # All handled versions of these APIs are non-flexible:
        # request header v1, response header v0.
        return _i32(correlation_id) + handler(version, r)

    def _api_versions(self, version: int) -> bytes:
        if version > 3:
            # Client retries with the version we put in the (v0-encoded) list.
            return _i16(ERR_UNSUPPORTED_VERSION) + _array(
                [_i16(API_VERSIONS) + _i16(0) + _i16(3)]
            )
        if version >= 3:
            entries = [
                _i16(k) + _i16(lo) + _i16(hi) + _EMPTY_TAGS
                for k, lo, hi in self.advertised
            ]
            return (
                _i16(ERR_NONE) + _compact_array(entries) + _i32(0) + _EMPTY_TAGS
            )
        body = _i16(ERR_NONE) + _array(
            [_i16(k) + _i16(lo) + _i16(hi) for k, lo, hi in self.advertised]
        )
        if version >= 1:
            body += _i32(0)  # throttle_time_ms
        return body

    def _metadata(self, version: int, r: _Reader) -> bytes:
        n = r.int32()
        requested = None if n < 0 else [r.string() for _ in range(n)]
        # (allow_auto_topic_creation etc. follow; not needed.)
        if requested is None:
            topics = [TOPIC]
        else:
            topics = requested

        broker = _i32(self.NODE_ID) + _string(HOST) + _i32(self.port)
        broker += _string(None)  # rack (v1+)
        body = b""
        if version >= 3:
            body += _i32(0)  # throttle_time_ms
        body += _array([broker])
        if version >= 2:
            body += _string("fake-cluster")
        body += _i32(self.NODE_ID)  # controller_id (v1+)

        topic_entries = []
        for name in topics:
            known = name == TOPIC
            t = _i16(ERR_NONE if known else ERR_UNKNOWN_TOPIC_OR_PARTITION)
            t += _string(name) + _i8(0)  # is_internal (v1+)
            partitions = []
            if known:
                p = _i16(ERR_NONE) + _i32(0) + _i32(self.NODE_ID)
                if version >= 7:
                    p += _i32(0)  # leader_epoch
                p += _array([_i32(self.NODE_ID)])  # replicas
                p += _array([_i32(self.NODE_ID)])  # isr
                if version >= 5:
                    p += _array([])  # offline_replicas
                partitions.append(p)
            t += _array(partitions)
            if version >= 8:
                t += _i32(-2147483648)  # topic_authorized_operations: omitted
            topic_entries.append(t)
        body += _array(topic_entries)
        if version >= 8:
            body += _i32(-2147483648)  # cluster_authorized_operations
        return body

    def _produce(self, version: int, r: _Reader) -> bytes:
        r.nullable_string()  # transactional_id (v3+)
        r.int16()  # acks
        r.int32()  # timeout_ms
        topic_responses = []
        for _ in range(r.int32()):
            name = r.string()
            partition_responses = []
            for _ in range(r.int32()):
                index = r.int32()
                records = r.nullable_bytes()
                error = ERR_NONE
                base_offset = -1
                if name == TOPIC and index == 0 and records is not None:
                    with self._lock:
                        self.captured.append(records)
                        base_offset = self._next_offset
                        self._next_offset += _count_offsets(records)
                else:
                    error = ERR_UNKNOWN_TOPIC_OR_PARTITION
                p = _i32(index) + _i16(error) + _i64(base_offset)
                p += _i64(-1)  # log_append_time_ms (v2+)
                if version >= 5:
                    p += _i64(0)  # log_start_offset
                if version >= 8:
                    p += _array([])  # record_errors
                    p += _string(None)  # error_message
                partition_responses.append(p)
            topic_responses.append(_string(name) + _array(partition_responses))
        return _array(topic_responses) + _i32(0)  # throttle_time_ms

    def _init_producer_id(self, version: int, r: _Reader) -> bytes:
        r.nullable_string()  # transactional_id
        r.int32()  # transaction_timeout_ms
        with self._lock:
            pid = self._next_producer_id
            self._next_producer_id += 1
        return _i32(0) + _i16(ERR_NONE) + _i64(pid) + _i16(0)


def _count_offsets(records: bytes) -> int:
    """Number of offsets covered by the concatenated v2 batches in records."""
    total, pos = 0, 0
    while pos + _BATCH_HEADER_SIZE <= len(records):
        (batch_length,) = struct.unpack_from(">i", records, pos + _BATCH_LENGTH_OFFSET)
        (last_delta,) = struct.unpack_from(
            ">i", records, pos + _BATCH_LAST_OFFSET_DELTA_OFFSET
        )
        total += last_delta + 1
        pos += 12 + batch_length
    return max(total, 1)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def split_batches(records: bytes) -> list[bytes]:
    """Split a Produce ``records`` field into its individual RecordBatches."""
    out, pos = [], 0
    while pos < len(records):
        if pos + 12 > len(records):
            raise ValueError(f"truncated batch header at {pos}")
        (batch_length,) = struct.unpack_from(">i", records, pos + _BATCH_LENGTH_OFFSET)
        end = pos + 12 + batch_length
        if end > len(records):
            raise ValueError(f"truncated batch at {pos}")
        out.append(records[pos:end])
        pos = end
    return out


def batch_attributes(batch: bytes) -> int:
    """The int16 attributes field of a v2 RecordBatch (codec = attrs & 0x7)."""
    magic = batch[_BATCH_MAGIC_OFFSET]
    if magic != 2:
        raise ValueError(f"not a v2 record batch (magic={magic})")
    return struct.unpack_from(">h", batch, _BATCH_ATTRIBUTES_OFFSET)[0]


def _run_capture(
    compression: str,
    records: list[tuple[Optional[bytes], Optional[bytes], list[tuple[str, bytes]]]],
    idempotent: bool = False,
    timestamp_ms: Optional[int] = None,
    timeout: float = 15.0,
) -> tuple[list[bytes], list[tuple[int, int, Optional[str]]]]:
    from confluent_kafka import KafkaException, Producer

    if compression not in CODECS:
        raise ValueError(f"unknown compression {compression!r}; use one of {list(CODECS)}")
    if not records:
        raise ValueError("records must not be empty")

    broker = FakeBroker(idempotent=idempotent).start()
    producer = None
    delivery_errors: list[str] = []
    try:
        conf = {
            "bootstrap.servers": broker.bootstrap,
            "client.id": "librdkafka-capture",
            "compression.type": compression,
            "linger.ms": 100,
            "batch.num.messages": 100000,
            # librdkafka refuses acks != all together with idempotence.
            "acks": "all" if idempotent else "1",
            "enable.idempotence": idempotent,
            "message.timeout.ms": int(timeout * 1000),
            "socket.timeout.ms": 5000,
            "broker.address.family": "v4",
            "log_level": 3,
        }
        producer = Producer(conf)

        def on_delivery(err, _msg):
            if err is not None:
                delivery_errors.append(str(err))

        for key, value, headers in records:
            kwargs = {"key": key, "value": value, "partition": 0,
                      "on_delivery": on_delivery}
            if headers:
                kwargs["headers"] = list(headers)
            if timestamp_ms is not None:
                kwargs["timestamp"] = timestamp_ms
            producer.produce(TOPIC, **kwargs)
        remaining = producer.flush(timeout)
        if remaining:
            raise RuntimeError(
                f"{remaining} message(s) not delivered within {timeout}s; "
                f"broker errors: {broker.errors}; requests: {broker.requests}"
            )
    except KafkaException as e:
        raise RuntimeError(f"librdkafka error: {e}") from e
    finally:
        if producer is not None:
            producer.close()
            del producer
            gc.collect()
        broker.stop()

    if delivery_errors:
        raise RuntimeError(f"delivery failed: {delivery_errors}")
    if not broker.captured:
        raise RuntimeError(
            f"no Produce records captured; broker errors: {broker.errors}; "
            f"requests: {broker.requests}"
        )
    return list(broker.captured), list(broker.requests)


def capture_batches(
    compression: str,
    records: list[tuple[Optional[bytes], Optional[bytes], list[tuple[str, bytes]]]],
    idempotent: bool = False,
    timestamp_ms: Optional[int] = None,
) -> list[bytes]:
    """Produce ``records`` ((key, value, headers) tuples) with librdkafka and
    return the raw ``records`` bytes of each Produce request partition.

    compression: one of none, gzip, snappy, lz4, zstd.
    idempotent:  set enable.idempotence=true (forces acks=all; the fake broker
                 then also answers InitProducerId).
    timestamp_ms: optional fixed CreateTime for every record (default: now).
    """
    return _run_capture(compression, records, idempotent, timestamp_ms)[0]


# --------------------------------------------------------------------------
# Demo
# --------------------------------------------------------------------------

_API_NAMES = {PRODUCE: "Produce", METADATA: "Metadata", API_VERSIONS: "ApiVersions",
              INIT_PRODUCER_ID: "InitProducerId"}


def _demo_records() -> list[tuple[Optional[bytes], Optional[bytes], list[tuple[str, bytes]]]]:
    return [
        (b"key-0", b"value-0 " * 8, []),
        (None, b"value-1 no key", [("h1", b"v1")]),
        (b"key-2", None, [("a", b""), ("b", b"\x00\x01")]),
        (None, None, []),
        (b"key-4", b"value-4 " * 8, [("trace", b"abc")]),
    ]


def _main() -> None:
    import sys

    idempotent = "--idempotent" in sys.argv[1:]
    for codec in CODECS:
        captured, requests = _run_capture(codec, _demo_records(), idempotent=idempotent)
        versions = sorted({(_API_NAMES.get(k, str(k)), v) for k, v, _ in requests})
        batches = [b for rec in captured for b in split_batches(rec)]
        print(f"{codec}: {len(captured)} produce record set(s), {len(batches)} batch(es); "
              f"api versions used: {', '.join(f'{n} v{v}' for n, v in versions)}")
        for i, batch in enumerate(batches):
            attrs = batch_attributes(batch)
            print(f"  batch {i}: {len(batch)} bytes, attributes=0x{attrs:04x} "
                  f"(codec bits={attrs & 0x7}, expected {CODECS[codec]})"
                  f"{'' if attrs & 0x7 == CODECS[codec] else '  <-- MISMATCH'}")
            print(f"    {batch[:32].hex()}")


if __name__ == "__main__":
    _main()
