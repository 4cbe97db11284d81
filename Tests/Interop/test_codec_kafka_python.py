"""Cross-check our codec against kafka-python's protocol encoders.

kafka-python (3.x) builds every request/response class from Apache Kafka's
JSON message specs (``kafka/protocol/schemas/resources/``), independently of
our Swift generator. For every class and version it can encode we build a few
random instances, let kafka-python encode the body (no header), and ask our
check tool to decode and re-encode it with the same version. Any difference
means the two implementations disagree about the wire format.

The check tool is the executable named by ``KAFKAWIRE_CHECK`` (set by
``make test``). Run pytest with ``-s`` to see the summary line.
"""

from __future__ import annotations

import importlib
import pkgutil
import random
import uuid
import warnings

import pytest

from kafkawire_tool import CheckTool, tool_path

# kafka-python loads its schemas with importlib.resources APIs that Python 3.11
# deprecates; that noise is not ours.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka.protocol
    from kafka.protocol.api_message import ApiMessage
    from kafka.record.default_records import DefaultRecordBatchBuilder

# String seeds keep each case reproducible on its own, whatever the order.
SEED = "kafkawire-kafka-python-1"
INSTANCES = 3

# kafka-python 3.0.12 encodes 104 message classes (52 APIs) at 524
# (api, version, kind) combinations, all inside our range; leave a little
# slack for a newer kafka-python or narrower ranges, but catch an enumeration
# that silently found (almost) nothing.
MIN_CHECKED = 500

# (class name, version or None for all) -> reason. Only for demonstrated
# kafka-python encoder bugs. None are known for 3.0.12: all bodies this module
# generates were checked once against an independent encoder written from the
# spec JSON, byte for byte.
EXCLUDED: dict[tuple[str, int | None], str] = {}


# Multi-byte UTF-8 catches length prefixes that count characters, not bytes.
_TEXT = "abcxyzABCXYZ0189_-./é€日本🦀"


def _message_classes():
    """Every request/response class kafka-python defines, in API key order."""
    for mod in pkgutil.walk_packages(kafka.protocol.__path__, "kafka.protocol."):
        # protocol.old holds the superseded hand-written structs (only used by
        # a benchmark); generate_stubs is a developer script.
        if mod.name.startswith("kafka.protocol.old") or mod.name.endswith("generate_stubs"):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            importlib.import_module(mod.name)
    found, todo = {}, list(ApiMessage.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        # cls[v] creates per-version wrapper subclasses; keep the primary ones.
        if cls._class_version is None:
            found[cls.__name__] = cls
    return sorted(found.values(), key=lambda c: (c.API_KEY, c.type))


def _record_batch(rng):
    """A small, valid, uncompressed v2 record batch (deterministic bytes)."""
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=0, is_transactional=False,
        producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    timestamp = rng.randint(0, 2**41)
    for offset in range(rng.randint(1, 2)):
        headers = [("h%d" % n, rng.choice([None, rng.randbytes(3)])) for n in range(rng.randint(0, 2))]
        builder.append(offset, timestamp + offset, rng.choice([None, rng.randbytes(4)]),
                       rng.randbytes(rng.randint(0, 6)), headers)
    return bytes(builder.build())


def _scalar(type_str, rng):
    if type_str == "int8":
        return rng.randint(-2**7, 2**7 - 1)
    if type_str == "int16":
        return rng.randint(-2**15, 2**15 - 1)
    if type_str == "uint16":
        return rng.randint(0, 2**16 - 1)
    if type_str == "int32":
        return rng.randint(-2**31, 2**31 - 1)
    if type_str == "int64":
        return rng.randint(-2**63, 2**63 - 1)
    if type_str == "float64":
        # Finite only: NaN payloads need not survive a re-encode bit for bit.
        return rng.choice([0.0, -2.5, 5e-324, rng.uniform(-1e12, 1e12)])
    if type_str == "bool":
        return rng.random() < 0.5
    if type_str == "uuid":
        return uuid.UUID(int=rng.getrandbits(128))
    if type_str == "string":
        return "".join(rng.choice(_TEXT) for _ in range(rng.randint(0, 12)))
    if type_str == "bytes":
        return rng.randbytes(rng.randint(0, 8))
    if type_str == "records":
        # A real batch keeps this valid whether our codec keeps records opaque
        # or parses them.
        return rng.choice([b"", _record_batch(rng)])
    if type_str == "bitfield":
        # kafka-python's own type for int32 authorized_operations fields: a set
        # of bit numbers; None stands for INT32_MIN ("not requested").
        return None if rng.random() < 0.3 else set(rng.sample(range(31), rng.randint(0, 4)))
    raise AssertionError("no generator for kafka-python field type %r" % type_str)


def _value(field, version, rng):
    if field.nullable_for_version_q(version) and rng.random() < 0.25:
        return None
    if field.is_struct():
        return field.data_class(version=version, **_fields(field.fields, version, rng))
    if field.is_struct_array():
        return [field.data_class(version=version, **_fields(field.fields, version, rng))
                for _ in range(rng.randint(0, 3))]
    if field.is_array():
        return [_scalar(field.array_of.type_str, rng) for _ in range(rng.randint(0, 3))]
    return _scalar(field.type_str, rng)


def _fields(fields, version, rng):
    values = {}
    for field in fields.values():
        if not field.for_version_q(version):
            continue
        # Leave about half the tagged fields unset so absent tags are covered
        # too (like Kafka, kafka-python only writes tags that differ from the default).
        if field.tagged_field_q(version) and rng.random() < 0.5:
            continue
        values[field.name] = _value(field, version, rng)
    return values


def _encode(cls, version, instance):
    rng = random.Random("%s:%s:%d:%d" % (SEED, cls.__name__, version, instance))
    message = cls(version=version, **_fields(cls.fields, version, rng))
    return bytes(message.encode(version=version))  # body only: header=False


def _describe(case, answer):
    name, version, kind, instance, sent = case
    if answer.get("ok") is not True:
        return "%s v%d %s #%d: error %s\n    sent %s (%d bytes)" % (
            name, version, kind, instance, answer.get("error", answer), _clip(sent, 0), len(sent))
    back = bytes.fromhex(answer.get("hex", ""))
    at = next((i for i, (a, b) in enumerate(zip(sent, back)) if a != b), min(len(sent), len(back)))
    return ("%s v%d %s #%d: first difference at byte %d\n    sent %s (%d bytes)\n    got  %s (%d bytes)"
            % (name, version, kind, instance, at, _clip(sent, at), len(sent), _clip(back, at), len(back)))


def _clip(data, at, before=32, after=160):
    """Hex of data around byte offset `at`, with [..N bytes] for what is cut."""
    start, end = max(0, at - before), min(len(data), at + after)
    text = data[start:end].hex()
    if start:
        text = "[..%d bytes]%s" % (start, text)
    if end < len(data):
        text += "[..%d bytes]" % (len(data) - end)
    return text


def test_kafka_python_bodies_roundtrip(record_property):
    tool = CheckTool(tool_path())
    try:
        # Request and response share one version range per API, so asking for
        # the request range covers both kinds.
        classes = _message_classes()
        ranges = {}
        for cls in classes:
            if cls.API_KEY not in ranges:
                answer = tool.ask({"op": "supported", "api": cls.API_KEY, "kind": "request"})
                assert answer.get("ok") is True, (
                    "check tool does not know API %d (%s), which is in our spec set: %s"
                    % (cls.API_KEY, cls.name, answer))
                ranges[cls.API_KEY] = (answer["min"], answer["max"])

        cases, requests, checked, skipped, excluded = [], [], set(), 0, 0
        for cls in classes:
            # kafka-python's range starts at 0 even where the JSON's validVersions
            # begins later (KIP-896 removals); its schemas keep the fields of those
            # old versions, so the bodies are still the real old wire format.
            low, high = ranges[cls.API_KEY]
            for version in range(cls.min_version, cls.max_version + 1):
                if (cls.__name__, version) in EXCLUDED or (cls.__name__, None) in EXCLUDED:
                    excluded += 1
                    continue
                if not low <= version <= high:
                    skipped += 1
                    continue
                checked.add((cls.__name__, version, cls.type))
                for instance in range(INSTANCES):
                    try:
                        body = _encode(cls, version, instance)
                    except Exception as error:  # our generator or kafka-python, not the codec
                        pytest.fail("kafka-python could not encode %s v%d #%d: %r"
                                    % (cls.__name__, version, instance, error))
                    cases.append((cls.__name__, version, cls.type, instance, body))
                    requests.append({"op": "roundtrip", "api": cls.API_KEY, "version": version,
                                     "kind": cls.type, "hex": body.hex()})

        answers = tool.ask_all(requests)
    finally:
        tool.close()

    failures = [(case, answer) for case, answer in zip(cases, answers)
                if answer.get("ok") is not True
                or answer.get("hex", "").lower() != case[4].hex()]
    # One example per failing (class, version, kind) shows more distinct bugs.
    examples = {}
    for case, answer in failures:
        examples.setdefault(case[:3], (case, answer))

    n_requests = sum(1 for _, _, kind in checked if kind == "request")
    summary = ("kafka-python cross-check: %d API/version pairs checked (%d requests, %d responses), "
               "%d skipped as outside our range"
               % (len(checked), n_requests, len(checked) - n_requests, skipped))
    if excluded:
        summary += ", %d excluded for kafka-python bugs" % excluded
    summary += "; %d messages, %d failed" % (len(cases), len(failures))
    print("\n" + summary)
    record_property("pairs_checked", len(checked))
    record_property("pairs_skipped", skipped)

    if failures:
        pairs = ", ".join("%s v%d" % key[:2] for key in list(examples)[:40])
        if len(examples) > 40:
            pairs += ", ..."
        details = "\n".join(_describe(*example) for example in list(examples.values())[:10])
        pytest.fail("%d of %d kafka-python bodies did not survive decode + re-encode unchanged, "
                    "in %d API/version pairs: %s\nFirst ones:\n%s"
                    % (len(failures), len(cases), len(examples), pairs, details), pytrace=False)
    assert len(checked) >= MIN_CHECKED, (
        "only %d API/version pairs checked (expected at least %d): %s"
        % (len(checked), MIN_CHECKED, summary))
