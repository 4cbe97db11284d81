"""Transactions (issue 23) with real clients against a real minibroker: confluent-kafka's
transactional producer and read_committed consumer, kafka-python's transactional producer, the
consume-transform-produce loop with send_offsets_to_transaction, fencing, the transaction
timeout, and a broker killed with a transaction open."""

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from broker import Tansu
from clients import LOG, TIMEOUT, consume_partition, consumer_config, create_topic, produce, values


@pytest.fixture(scope="module")
def broker_overrides():
    # Timed-out transactions are looked for every 200 ms, so the timeout test need not wait 10 s.
    return {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "200"}


def txn_producer(bootstrap: str, txn_id: str, **extra) -> Producer:
    conf = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5, "logger": LOG}
    conf.update(extra)
    return Producer(conf)


def read(bootstrap: str, topic: str, isolation: str, partition: int = 0) -> list:
    return consume_partition(bootstrap, topic, partition, config={"isolation.level": isolation})


def end_offsets(bootstrap: str, topic: str, isolation: str, partition: int = 0) -> int:
    consumer = Consumer(consumer_config(bootstrap, **{"isolation.level": isolation}))
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)[1]
    finally:
        consumer.close()


def transaction(producer: Producer, topic: str, items, commit: bool = True, partition: int = 0) -> None:
    producer.begin_transaction()
    for item in items:
        producer.produce(topic, value=item, partition=partition)
    if commit:
        producer.commit_transaction(TIMEOUT)
    else:
        producer.flush(TIMEOUT)
        producer.abort_transaction(TIMEOUT)


def test_committed_records_are_read_and_aborted_ones_are_not(broker, topic):
    create_topic(broker.bootstrap, topic)
    producer = txn_producer(broker.bootstrap, f"txn-{uuid.uuid4().hex[:8]}")
    producer.init_transactions(TIMEOUT)
    transaction(producer, topic, [b"a%d" % i for i in range(10)])
    transaction(producer, topic, [b"x%d" % i for i in range(5)], commit=False)
    transaction(producer, topic, [b"b%d" % i for i in range(10)])
    committed = values(read(broker.bootstrap, topic, "read_committed"))
    assert committed == [b"a%d" % i for i in range(10)] + [b"b%d" % i for i in range(10)]
    # read_uncommitted sees the aborted records too, and neither sees the three markers.
    uncommitted = values(read(broker.bootstrap, topic, "read_uncommitted"))
    assert uncommitted == [b"a%d" % i for i in range(10)] + [b"x%d" % i for i in range(5)] + [b"b%d" % i for i in range(10)]
    # 25 records and 3 markers; with nothing open the last stable offset is the log end.
    assert end_offsets(broker.bootstrap, topic, "read_committed") == 28
    assert end_offsets(broker.bootstrap, topic, "read_uncommitted") == 28


def test_an_open_transaction_holds_the_last_stable_offset(broker, topic):
    create_topic(broker.bootstrap, topic)
    produce(broker.bootstrap, topic, [b"before"])
    producer = txn_producer(broker.bootstrap, f"txn-{uuid.uuid4().hex[:8]}")
    producer.init_transactions(TIMEOUT)
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, value=b"open%d" % i, partition=0)
    producer.flush(TIMEOUT)
    assert end_offsets(broker.bootstrap, topic, "read_uncommitted") == 4
    assert end_offsets(broker.bootstrap, topic, "read_committed") == 1
    assert values(read(broker.bootstrap, topic, "read_committed")) == [b"before"]
    producer.commit_transaction(TIMEOUT)
    assert values(read(broker.bootstrap, topic, "read_committed")) == [b"before", b"open0", b"open1", b"open2"]
    assert end_offsets(broker.bootstrap, topic, "read_committed") == 5


def test_a_second_producer_with_the_same_id_fences_the_first(broker, topic):
    create_topic(broker.bootstrap, topic)
    txn_id = f"txn-{uuid.uuid4().hex[:8]}"
    first = txn_producer(broker.bootstrap, txn_id)
    first.init_transactions(TIMEOUT)
    first.begin_transaction()
    first.produce(topic, value=b"zombie", partition=0)
    first.flush(TIMEOUT)
    second = txn_producer(broker.bootstrap, txn_id)
    # The second's InitProducerId aborts the first's open transaction and bumps the epoch.
    second.init_transactions(TIMEOUT)
    with pytest.raises(KafkaException) as fenced:
        first.commit_transaction(TIMEOUT)
    error = fenced.value.args[0]
    assert error.fatal() or error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH), error
    transaction(second, topic, [b"fresh"])
    assert values(read(broker.bootstrap, topic, "read_committed")) == [b"fresh"]
    assert values(read(broker.bootstrap, topic, "read_uncommitted")) == [b"zombie", b"fresh"]


def test_a_transaction_past_its_timeout_is_aborted(broker, topic):
    create_topic(broker.bootstrap, topic)
    producer = txn_producer(broker.bootstrap, f"txn-{uuid.uuid4().hex[:8]}", **{"transaction.timeout.ms": 1000})
    producer.init_transactions(TIMEOUT)
    producer.begin_transaction()
    producer.produce(topic, value=b"late", partition=0)
    producer.flush(TIMEOUT)
    assert end_offsets(broker.bootstrap, topic, "read_committed") == 0
    deadline = time.monotonic() + 15
    while end_offsets(broker.bootstrap, topic, "read_committed") == 0:
        assert time.monotonic() < deadline, "the timed-out transaction was not aborted"
        time.sleep(0.2)
    # Aborted: the marker follows the record; read_committed sees nothing, the end moved past both.
    assert end_offsets(broker.bootstrap, topic, "read_committed") == 2
    assert read(broker.bootstrap, topic, "read_committed") == []
    with pytest.raises(KafkaException):
        producer.commit_transaction(TIMEOUT)


def test_consume_transform_produce_commits_offsets_with_the_output(broker, topic):
    source, sink = topic + "-in", topic + "-out"
    create_topic(broker.bootstrap, source)
    create_topic(broker.bootstrap, sink)
    produce(broker.bootstrap, source, [b"%d" % i for i in range(200)])
    group = f"eos-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed", "logger": LOG})
    producer = txn_producer(broker.bootstrap, f"eos-{uuid.uuid4().hex[:8]}")
    producer.init_transactions(TIMEOUT)
    consumer.subscribe([source])
    seen = 0
    deadline = time.monotonic() + TIMEOUT
    try:
        while seen < 200:
            assert time.monotonic() < deadline, f"only {seen} of 200 records transformed"
            batch = consumer.consume(50, 1.0)
            records = [m for m in batch if not m.error()]
            if not records:
                continue
            producer.begin_transaction()
            for m in records:
                producer.produce(sink, value=b"out-" + m.value(), partition=0)
            producer.send_offsets_to_transaction(consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), TIMEOUT)
            producer.commit_transaction(TIMEOUT)
            seen += len(records)
    finally:
        consumer.close()
    assert values(read(broker.bootstrap, sink, "read_committed")) == [b"out-%d" % i for i in range(200)]
    check = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "logger": LOG})
    try:
        committed = check.committed([TopicPartition(source, 0)], timeout=10)
        assert committed[0].offset == 200
    finally:
        check.close()


def test_aborted_offsets_are_not_committed(broker, topic):
    source = topic + "-in"
    create_topic(broker.bootstrap, source)
    create_topic(broker.bootstrap, topic)
    produce(broker.bootstrap, source, [b"1", b"2", b"3"])
    group = f"eos-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "logger": LOG})
    producer = txn_producer(broker.bootstrap, f"eos-{uuid.uuid4().hex[:8]}")
    producer.init_transactions(TIMEOUT)
    try:
        producer.begin_transaction()
        producer.produce(topic, value=b"x", partition=0)
        producer.send_offsets_to_transaction([TopicPartition(source, 0, 2)], consumer.consumer_group_metadata(), TIMEOUT)
        producer.abort_transaction(TIMEOUT)
        assert consumer.committed([TopicPartition(source, 0)], timeout=10)[0].offset < 0
        producer.begin_transaction()
        producer.send_offsets_to_transaction([TopicPartition(source, 0, 3)], consumer.consumer_group_metadata(), TIMEOUT)
        producer.commit_transaction(TIMEOUT)
        assert consumer.committed([TopicPartition(source, 0)], timeout=10)[0].offset == 3
    finally:
        consumer.close()


def test_kafka_python_transactional_producer(broker, topic):
    from kafka import KafkaProducer

    create_topic(broker.bootstrap, topic)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=f"kp-{uuid.uuid4().hex[:8]}")
    try:
        producer.init_transactions()
        producer.begin_transaction()
        for i in range(5):
            producer.send(topic, value=b"kp%d" % i, partition=0)
        producer.commit_transaction()
        producer.begin_transaction()
        producer.send(topic, value=b"gone", partition=0)
        producer.flush()  # sent, so that the abort has something to abort
        producer.abort_transaction()
    finally:
        producer.close()
    assert values(read(broker.bootstrap, topic, "read_committed")) == [b"kp%d" % i for i in range(5)]
    assert values(read(broker.bootstrap, topic, "read_uncommitted")) == [b"kp%d" % i for i in range(5)] + [b"gone"]


def test_a_transaction_open_when_the_broker_is_killed_ends_aborted(broker_factory, topic):
    broker = broker_factory()
    create_topic(broker.bootstrap, topic)
    txn_id = f"txn-{uuid.uuid4().hex[:8]}"
    producer = txn_producer(broker.bootstrap, txn_id)
    producer.init_transactions(TIMEOUT)
    transaction(producer, topic, [b"kept"])
    producer.begin_transaction()
    producer.produce(topic, value=b"open", partition=0)
    producer.flush(TIMEOUT)
    broker.restart(hard=True)
    # The open transaction still holds the last stable offset after the restart...
    assert end_offsets(broker.bootstrap, topic, "read_committed") == 2
    assert values(read(broker.bootstrap, topic, "read_committed")) == [b"kept"]
    # ...until the id's next producer aborts it.
    again = txn_producer(broker.bootstrap, txn_id)
    again.init_transactions(TIMEOUT)
    assert end_offsets(broker.bootstrap, topic, "read_committed") == 4
    transaction(again, topic, [b"after"])
    assert values(read(broker.bootstrap, topic, "read_committed")) == [b"kept", b"after"]
    assert values(read(broker.bootstrap, topic, "read_uncommitted")) == [b"kept", b"open", b"after"]


def test_admin_lists_and_describes_transactions_and_aborts_a_hanging_one(broker, topic):
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTP
    from kafka.admin import AbortTransactionSpec

    create_topic(broker.bootstrap, topic)
    txn_id = f"adm-{uuid.uuid4().hex[:8]}"
    producer = txn_producer(broker.bootstrap, txn_id)
    producer.init_transactions(TIMEOUT)
    producer.begin_transaction()
    producer.produce(topic, value=b"open", partition=0)
    producer.flush(TIMEOUT)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        # Per broker, the transactions it coordinates.
        listed = {t.transactional_id: t for ts in admin.list_transactions(state_filters=["Ongoing"]).values() for t in ts}
        assert txn_id in listed
        empty = {t.transactional_id for ts in admin.list_transactions(state_filters=["Empty"]).values() for t in ts}
        assert txn_id not in empty
        described = admin.describe_transactions([txn_id])[txn_id]
        assert str(getattr(described.state, "value", described.state)) == "Ongoing"
        assert described.producer_id == listed[txn_id].producer_id
        assert [(tp.topic, tp.partition) for tp in described.topic_partitions] == [(topic, 0)]
        # The partition knows the producer and where its open transaction starts.
        state = admin.describe_producers([KTP(topic, 0)])[KTP(topic, 0)]
        active = [p for p in state.active_producers if p.producer_id == described.producer_id]
        assert len(active) == 1 and active[0].current_transaction_start_offset == 0
        # An operator aborts the transaction on the partition (a hanging one, to Kafka's tools).
        admin.abort_transaction(AbortTransactionSpec(topic_partition=KTP(topic, 0), producer_id=described.producer_id,
                                                     producer_epoch=described.producer_epoch, coordinator_epoch=-1))
        assert end_offsets(broker.bootstrap, topic, "read_committed") == 2
        assert read(broker.bootstrap, topic, "read_committed") == []
    finally:
        admin.close()


# --------------------------------------------------------------------------------------------
# Our Swift clients (through `kfk`), read by confluent-kafka and reading confluent-kafka's
# transactions, against MiniBroker and against Tansu.
# --------------------------------------------------------------------------------------------

def kfk(broker, *args, stdin=None):
    import os
    import subprocess

    path = os.environ.get("KFK")
    if not path:
        pytest.fail("KFK is not set: run the interop tests via `make test`.")
    out = subprocess.run([path, *args, "--bootstrap-server", broker.bootstrap], input=stdin, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"kfk {' '.join(args)} failed ({out.returncode}): {out.stderr}"
    return out


def test_swift_transactions_are_read_by_confluent_kafka(any_broker, topic):
    create_topic(any_broker.bootstrap, topic)
    txn_id = f"kfk-{uuid.uuid4().hex[:8]}"
    committed = kfk(any_broker, "produce", topic, "--partition", "0", "--transactional-id", txn_id, stdin="one\ntwo\n")
    assert "committed" in committed.stderr
    aborted = kfk(any_broker, "produce", topic, "--partition", "0", "--transactional-id", txn_id, "--abort", stdin="gone\n")
    assert "aborted" in aborted.stderr
    kfk(any_broker, "produce", topic, "--partition", "0", "--transactional-id", txn_id, stdin="three\n")
    assert values(read(any_broker.bootstrap, topic, "read_uncommitted")) == [b"one", b"two", b"gone", b"three"]
    if isinstance(any_broker, Tansu):
        # Tansu serves the transaction APIs but not read_committed: its fetches carry no aborted
        # transactions, so librdkafka shows the aborted record too (README, "Tansu").
        assert values(read(any_broker.bootstrap, topic, "read_committed")) == [b"one", b"two", b"gone", b"three"]
        return
    assert values(read(any_broker.bootstrap, topic, "read_committed")) == [b"one", b"two", b"three"]


def test_confluent_transactions_are_read_by_the_swift_consumer(any_broker, topic):
    create_topic(any_broker.bootstrap, topic)
    producer = txn_producer(any_broker.bootstrap, f"txn-{uuid.uuid4().hex[:8]}")
    producer.init_transactions(TIMEOUT)
    transaction(producer, topic, [b"a", b"b"])
    transaction(producer, topic, [b"x", b"y"], commit=False)
    transaction(producer, topic, [b"c"])
    everything = kfk(any_broker, "consume", topic, "--from-beginning", "--max-messages", "5", "--timeout-ms", "15000",
                     "--isolation-level", "read_uncommitted")
    assert everything.stdout.splitlines() == ["a", "b", "x", "y", "c"]
    committed = kfk(any_broker, "consume", topic, "--from-beginning", "--max-messages", "5", "--timeout-ms", "5000")
    if isinstance(any_broker, Tansu):
        # Tansu does not filter aborted transactions (see above): our consumer reads what librdkafka reads.
        assert committed.stdout.splitlines() == [v.decode() for v in values(read(any_broker.bootstrap, topic, "read_committed"))]
        return
    assert committed.stdout.splitlines() == ["a", "b", "c"]
