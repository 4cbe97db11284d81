"""aiokafka (asyncio client, its own protocol and record code) against MiniBroker.

Proves that AIOKafkaProducer.send_and_wait is acknowledged at consecutive offsets with every
compression codec (stored with that codec), that an idempotent AIOKafkaProducer with many sends in
flight writes each record once and in order, and that an AIOKafkaConsumer with assign() +
seek_to_beginning() + getmany() reads everything back (keys, values, headers), with
partitions_for, topics, beginning_offsets and end_offsets matching.
"""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from clients import TIMEOUT, create_topic
from kafka_raw import assert_stored_codec

TIMEOUT_MS = int(TIMEOUT * 1000)


def run(coro, timeout=2 * TIMEOUT):
    """Runs one test coroutine on a fresh event loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def read_all(bootstrap, topic, count, partition=0):
    """assign() + seek_to_beginning(), then getmany() until ``count`` records (and no more)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                request_timeout_ms=TIMEOUT_MS)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while len(records) < count:
            assert loop.time() < deadline, f"read {len(records)} of {count} records in {TIMEOUT}s"
            batches = await consumer.getmany(tp, timeout_ms=500)
            records.extend(batches.get(tp, []))
        assert await consumer.getmany(tp, timeout_ms=500) == {}, "more records than were sent"
        return records
    finally:
        await consumer.stop()


def sample(n):
    return [(b"k%d" % i if i % 3 else None, b"aiokafka value %d " % i * 10,
             [("n", b"%d" % i)] if i % 2 else []) for i in range(n)]


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
def test_send_and_wait_then_getmany(broker, topic, codec):
    create_topic(broker.bootstrap, topic)
    records = sample(40)

    async def scenario():
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=codec,
                                    acks="all", linger_ms=20, request_timeout_ms=TIMEOUT_MS)
        await producer.start()
        try:
            offsets = [(await producer.send_and_wait(topic, value=v, key=k, partition=0, headers=h)).offset
                       for k, v, h in records]
        finally:
            await producer.stop()
        return offsets, await read_all(broker.bootstrap, topic, len(records))

    offsets, got = run(scenario())
    assert offsets == list(range(len(records)))
    assert [r.offset for r in got] == offsets
    assert [(r.key, r.value, [tuple(h) for h in r.headers]) for r in got] == records
    assert_stored_codec(broker.bootstrap, topic, codec or "none")


def test_idempotent_producer_many_in_flight(broker, topic):
    create_topic(broker.bootstrap, topic)
    values = [b"aio idempotent %04d" % i for i in range(500)]

    async def scenario():
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True,
                                    acks="all", max_batch_size=1024, request_timeout_ms=TIMEOUT_MS)
        await producer.start()
        try:
            futures = [await producer.send(topic, value=v, partition=0) for v in values]
            metadata = await asyncio.gather(*futures)
        finally:
            await producer.stop()
        return [m.offset for m in metadata], await read_all(broker.bootstrap, topic, len(values))

    offsets, got = run(scenario())
    assert offsets == list(range(len(values)))
    assert [r.value for r in got] == values


def test_partitions_and_offsets(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=2)

    async def scenario():
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS)
        await producer.start()
        try:
            for i in range(5):
                await producer.send_and_wait(topic, value=b"%d" % i, partition=1)
            partitions = await producer.partitions_for(topic)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
            return (partitions, await consumer.topics(),
                    await consumer.beginning_offsets(tps), await consumer.end_offsets(tps))
        finally:
            await consumer.stop()

    partitions, topics, beginning, end = run(scenario())
    assert partitions == {0, 1}
    assert topic in topics
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    assert beginning == {tp0: 0, tp1: 0}
    assert end == {tp0: 0, tp1: 5}
