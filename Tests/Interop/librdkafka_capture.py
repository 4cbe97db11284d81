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

Everything is encoded/decoded by hand with kafka_raw's ``struct`` primitives.

Run ``python3 librdkafka_capture.py`` for a demo over all five codecs.
"""

from __future__ import annotations

import gc
import socket
import struct
import threading
from typing import Optional

from kafka_raw import (
    API_VERSIONS,
    CODEC_IDS,
    FETCH,
    FIND_COORDINATOR,
    INIT_PRODUCER_ID,
    METADATA,
    NO_TAGGED_FIELDS,
    NONE,
    PRODUCE,
    UNKNOWN_TOPIC_OR_PARTITION,
    UNSUPPORTED_VERSION,
    Reader,
    array,
    compact_array,
    i8,
    i16,
    i32,
    i64,
    string,
)

TOPIC = "capture"
HOST = "127.0.0.1"

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

# RecordBatch v2 header layout (offsets into the batch).
_BATCH_LENGTH_OFFSET = 8  # int32, counts bytes after this field
_BATCH_MAGIC_OFFSET = 16
_BATCH_ATTRIBUTES_OFFSET = 21  # int16
_BATCH_LAST_OFFSET_DELTA_OFFSET = 23  # int32
_BATCH_HEADER_SIZE = 61


def _api_range(entry: tuple[int, int, int]) -> bytes:
    """One ApiVersions entry: api key, min and max version."""
    return b"".join(map(i16, entry))


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
                conn.sendall(i32(len(response)) + response)
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
    # Handlers build array entries as bytes first, then pass ``bytes`` (the
    # identity) as the element encoder of kafka_raw's ``array``.

    def _handle(self, frame: bytes) -> Optional[bytes]:
        r = Reader(frame)
        api_key, version, correlation_id = r.i16(), r.i16(), r.i32()
        client_id = r.string()
        with self._lock:
            self.requests.append((api_key, version, client_id))

        if api_key == API_VERSIONS:
            # Response header is always v0 for ApiVersions (KIP-511).
            if version >= 3:
                r.skip_tagged_fields()  # request header v2
            return i32(correlation_id) + self._api_versions(version)

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
        return i32(correlation_id) + handler(version, r)

    def _api_versions(self, version: int) -> bytes:
        if version > 3:
            # Client retries with the version we put in the (v0-encoded) list.
            return i16(UNSUPPORTED_VERSION) + array([(API_VERSIONS, 0, 3)], _api_range)
        if version >= 3:
            entries = compact_array(
                self.advertised, lambda e: _api_range(e) + NO_TAGGED_FIELDS
            )
            return i16(NONE) + entries + i32(0) + NO_TAGGED_FIELDS
        body = i16(NONE) + array(self.advertised, _api_range)
        if version >= 1:
            body += i32(0)  # throttle_time_ms
        return body

    def _metadata(self, version: int, r: Reader) -> bytes:
        requested = r.array(Reader.string)
        # (allow_auto_topic_creation etc. follow; not needed.)
        topics = [TOPIC] if requested is None else requested

        broker = i32(self.NODE_ID) + string(HOST) + i32(self.port)
        broker += string(None)  # rack (v1+)
        body = b""
        if version >= 3:
            body += i32(0)  # throttle_time_ms
        body += array([broker], bytes)
        if version >= 2:
            body += string("fake-cluster")
        body += i32(self.NODE_ID)  # controller_id (v1+)

        topic_entries = []
        for name in topics:
            known = name == TOPIC
            t = i16(NONE if known else UNKNOWN_TOPIC_OR_PARTITION)
            t += string(name) + i8(0)  # is_internal (v1+)
            partitions = []
            if known:
                p = i16(NONE) + i32(0) + i32(self.NODE_ID)
                if version >= 7:
                    p += i32(0)  # leader_epoch
                p += array([self.NODE_ID], i32)  # replicas
                p += array([self.NODE_ID], i32)  # isr
                if version >= 5:
                    p += array([], i32)  # offline_replicas
                partitions.append(p)
            t += array(partitions, bytes)
            if version >= 8:
                t += i32(-2147483648)  # topic_authorized_operations: omitted
            topic_entries.append(t)
        body += array(topic_entries, bytes)
        if version >= 8:
            body += i32(-2147483648)  # cluster_authorized_operations
        return body

    def _produce(self, version: int, r: Reader) -> bytes:
        r.string()  # transactional_id (v3+)
        r.i16()  # acks
        r.i32()  # timeout_ms
        topic_responses = []
        for _ in range(r.i32()):
            name = r.string()
            partition_responses = []
            for _ in range(r.i32()):
                index = r.i32()
                records = r.bytes_()
                error = NONE
                base_offset = -1
                if name == TOPIC and index == 0 and records is not None:
                    with self._lock:
                        self.captured.append(records)
                        base_offset = self._next_offset
                        self._next_offset += _count_offsets(records)
                else:
                    error = UNKNOWN_TOPIC_OR_PARTITION
                p = i32(index) + i16(error) + i64(base_offset)
                p += i64(-1)  # log_append_time_ms (v2+)
                if version >= 5:
                    p += i64(0)  # log_start_offset
                if version >= 8:
                    p += array([], bytes)  # record_errors
                    p += string(None)  # error_message
                partition_responses.append(p)
            topic_responses.append(string(name) + array(partition_responses, bytes))
        return array(topic_responses, bytes) + i32(0)  # throttle_time_ms

    def _init_producer_id(self, version: int, r: Reader) -> bytes:
        r.string()  # transactional_id
        r.i32()  # transaction_timeout_ms
        with self._lock:
            pid = self._next_producer_id
            self._next_producer_id += 1
        return i32(0) + i16(NONE) + i64(pid) + i16(0)


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

    if compression not in CODEC_IDS:
        raise ValueError(f"unknown compression {compression!r}; use one of {list(CODEC_IDS)}")
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
    for codec in CODEC_IDS:
        captured, requests = _run_capture(codec, _demo_records(), idempotent=idempotent)
        versions = sorted({(_API_NAMES.get(k, str(k)), v) for k, v, _ in requests})
        batches = [b for rec in captured for b in split_batches(rec)]
        print(f"{codec}: {len(captured)} produce record set(s), {len(batches)} batch(es); "
              f"api versions used: {', '.join(f'{n} v{v}' for n, v in versions)}")
        for i, batch in enumerate(batches):
            attrs = batch_attributes(batch)
            print(f"  batch {i}: {len(batch)} bytes, attributes=0x{attrs:04x} "
                  f"(codec bits={attrs & 0x7}, expected {CODEC_IDS[codec]})"
                  f"{'' if attrs & 0x7 == CODEC_IDS[codec] else '  <-- MISMATCH'}")
            print(f"    {batch[:32].hex()}")


if __name__ == "__main__":
    _main()
