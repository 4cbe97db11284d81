"""Consumer groups against a real MiniBroker, with real clients' group consumers.

Proves: partitions are shared out exactly once across a group and taken over when a member leaves
(classic eager, classic cooperative-sticky, and KIP-848 `group.protocol=consumer`); kafka-python's
and kcat's group consumers; committed offsets and their metadata survive a broker restart; a static
member that restarts within its session keeps its assignment without a rebalance; and the
AdminClient's group views (list, describe, offsets, delete).
"""

import subprocess
import sys
import threading
import time
import warnings

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, KafkaError, KafkaException, TopicPartition

from clients import LOG, TIMEOUT, admin, admin_call, create_topic, produce

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KpTopicPartition

# Groups settle fast in tests: no initial delay, quick KIP-848 heartbeats.
GROUP_OVERRIDES = {
    "group.initial.rebalance.delay.ms": "0",
    "group.consumer.heartbeat.interval.ms": "500",
    "group.consumer.session.timeout.ms": "6000",
}
SESSION_MS = 6000


@pytest.fixture(scope="module")
def broker_overrides():
    return GROUP_OVERRIDES


def group_consumer(bootstrap, group, protocol="classic", **extra):
    conf = {
        "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "logger": LOG,
    }
    if protocol == "consumer":
        conf["group.protocol"] = "consumer"
    else:
        conf["session.timeout.ms"] = SESSION_MS
        conf["heartbeat.interval.ms"] = 500
    conf.update(extra)
    return Consumer(conf)


def poll_round(consumers, seen, commit=True):
    """Polls each consumer once, recording (partition, offset) -> consumer index (a record seen twice
    fails the test) and committing each record synchronously."""
    for index, c in enumerate(consumers):
        msg = c.poll(0.1)
        if msg is None or msg.error():
            continue
        key = (msg.partition(), msg.offset())
        assert key not in seen, f"record {key} consumed twice (by {seen[key]} and {index})"
        seen[key] = index
        if commit:
            commit_sync(c, msg)


# A commit that races a rebalance carries the old generation (classic) or member epoch (KIP-848)
# and is refused; a careful application commits again once the consumer has the new one (it keeps
# the partition: sticky), as Java's consumer does by itself.
REBALANCING = {KafkaError.ILLEGAL_GENERATION, KafkaError.REBALANCE_IN_PROGRESS, KafkaError.STALE_MEMBER_EPOCH}


def commit_sync(consumer, msg, deadline_s=20.0):
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            consumer.commit(offsets=[TopicPartition(msg.topic(), msg.partition(), msg.offset() + 1)], asynchronous=False)
            return
        except KafkaException as error:
            if error.args[0].code() not in REBALANCING or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def assignments(consumers):
    return [sorted(tp.partition for tp in c.assignment()) for c in consumers]


def wait_assigned(consumers, partitions, deadline, seen=None):
    """Polls (keeping what arrives in `seen`) until the members' assignments cover `partitions`
    exactly once each."""
    seen = {} if seen is None else seen
    while time.monotonic() < deadline:
        poll_round(consumers, seen)
        owned = [p for a in assignments(consumers) for p in a]
        if sorted(owned) == sorted(partitions) and all(assignments(consumers)):
            return
    raise AssertionError(f"assignments never covered {partitions} once each: {assignments(consumers)}")


class Pollers:
    """Each member polled and committing on a thread of its own, as applications run consumers. Driven
    from one thread, a member blocked in a synchronous commit stops the others from polling; its commit
    can wait behind its own JoinGroup (a broker answers a connection's requests in order), and that join
    waits for the others to rejoin, which librdkafka does only once they are polled: a deadlock that a
    cooperative rebalance with records in flight runs into."""

    def __init__(self, seen):
        self.seen = seen  # (partition, offset) -> index of the member that got it
        self.lock = threading.Lock()
        self.errors = []
        self.running = {}
        # What each member owns, as its own thread last saw it: a consumer serves one thread at a time, and
        # asking it from here would wait out a commit in progress.
        self.assigned = {}

    def start(self, index, consumer):
        stop = threading.Event()
        thread = threading.Thread(target=self._run, args=(index, consumer, stop), daemon=True)
        self.running[index] = (stop, thread)
        thread.start()

    def _run(self, index, consumer, stop):
        try:
            while not stop.is_set():
                msg = consumer.poll(0.1)
                self.assigned[index] = sorted(tp.partition for tp in consumer.assignment())
                if msg is None or msg.error():
                    continue
                key = (msg.partition(), msg.offset())
                with self.lock:
                    if key in self.seen:
                        self.errors.append(f"record {key} consumed twice (by {self.seen[key]} and {index})")
                    self.seen[key] = index
                commit_sync(consumer, msg)
        except Exception as error:  # reported by wait_until
            self.errors.append(f"member {index}: {error!r}")

    def covers_once(self, indices, partitions):
        owned = [self.assigned.get(index, []) for index in indices]
        return sorted(p for a in owned for p in a) == sorted(partitions) and all(owned)

    def stop(self, index):
        stop, thread = self.running.pop(index)
        stop.set()
        thread.join(timeout=TIMEOUT * 3)
        assert not thread.is_alive(), f"member {index} did not stop polling"

    def stop_all(self):
        for index in list(self.running):
            self.stop(index)

    def wait_until(self, condition, deadline, what):
        while time.monotonic() < deadline:
            assert not self.errors, self.errors
            if condition():
                return
            time.sleep(0.05)
        raise AssertionError(f"{what()}")


@pytest.mark.parametrize("protocol, strategy", [
    ("classic", "range"),
    ("classic", "cooperative-sticky"),
    ("consumer", None),
])
def test_three_members_share_then_take_over(broker, topic, protocol, strategy):
    create_topic(broker.bootstrap, topic, partitions=6)
    produce(broker.bootstrap, topic, [(b"k%d" % i, b"v%d" % i) for i in range(300)], partition=None)
    group = f"g-{topic}"
    extra = {"partition.assignment.strategy": strategy} if strategy else {}
    members = [group_consumer(broker.bootstrap, group, protocol, **extra) for _ in range(3)]
    # Every member is closed, whatever fails: librdkafka's destroy of an unclosed group member can block
    # for good when the garbage collector gets to it, which would hang the whole run.
    still_open = list(members)
    seen = {}
    pollers = Pollers(seen)
    try:
        for index, c in enumerate(members):
            c.subscribe([topic])
            pollers.start(index, c)
        # Every partition owned by exactly one member.
        pollers.wait_until(lambda: pollers.covers_once([0, 1, 2], range(6)), time.monotonic() + 60,
                           lambda: f"assignments never covered the 6 partitions once each: {pollers.assigned}")
        pollers.wait_until(lambda: len(seen) >= 150, time.monotonic() + 60, lambda: f"only {len(seen)} records consumed")
        # One member leaves: the other two take its partitions within the session timeout.
        pollers.stop(2)
        still_open.remove(members[2])
        members[2].close()
        pollers.wait_until(lambda: pollers.covers_once([0, 1], range(6)), time.monotonic() + SESSION_MS / 1000 + 20,
                           lambda: f"the survivors never took over: {pollers.assigned}")
        pollers.wait_until(lambda: len(seen) >= 300, time.monotonic() + 60, lambda: f"only {len(seen)} records consumed")
        # Exactly once: synchronous commits mean nothing is delivered twice (the pollers check) or lost.
        pollers.stop_all()
        assert not pollers.errors, pollers.errors
        assert len(seen) == 300
    finally:
        pollers.stop_all()
        for c in still_open:
            c.close()


def test_commit_survives_restart_with_metadata(fresh_broker, topic):
    b = fresh_broker
    create_topic(b.bootstrap, topic, partitions=2)
    produce(b.bootstrap, topic, [b"x%d" % i for i in range(20)], partition=0)
    produce(b.bootstrap, topic, [b"y%d" % i for i in range(20)], partition=1)
    group = f"g-{topic}"
    c = group_consumer(b.bootstrap, group)
    try:
        c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
        c.commit(offsets=[TopicPartition(topic, 0, 7, metadata="checkpoint-a"),
                          TopicPartition(topic, 1, 13, metadata="checkpoint-b")], asynchronous=False)
    finally:
        c.close()
    b.restart()
    c = group_consumer(b.bootstrap, group)
    try:
        committed = {tp.partition: tp for tp in c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=TIMEOUT)}
        assert committed[0].offset == 7 and committed[0].metadata == "checkpoint-a"
        assert committed[1].offset == 13 and committed[1].metadata == "checkpoint-b"
        # A new member of the group resumes at the committed offsets.
        c.subscribe([topic])
        first = {}
        deadline = time.monotonic() + 30
        while len(first) < 2 and time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is not None and not msg.error():
                first.setdefault(msg.partition(), msg.offset())
        assert first == {0: 7, 1: 13}
    finally:
        c.close()


def test_static_member_restart_keeps_assignment(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=4)
    group = f"g-{topic}"
    a = group_consumer(broker.bootstrap, group, **{"group.instance.id": "static-a", "session.timeout.ms": 10000})
    b = group_consumer(broker.bootstrap, group, **{"group.instance.id": "static-b", "session.timeout.ms": 10000})
    try:
        for c in (a, b):
            c.subscribe([topic])
        wait_assigned([a, b], range(4), time.monotonic() + 60)
        before = assignments([a, b])
        generation = describe_group(broker.bootstrap, group)
        # Restart b within its session: same instance id, a fresh process.
        b.close()
        b = group_consumer(broker.bootstrap, group, **{"group.instance.id": "static-b", "session.timeout.ms": 10000})
        b.subscribe([topic])
        wait_assigned([a, b], range(4), time.monotonic() + 30)
        assert assignments([a, b]) == before
        after = describe_group(broker.bootstrap, group)
        # No rebalance: same members (by instance id) and the group never left Stable for a new generation.
        assert after.state == ConsumerGroupState.STABLE
        assert sorted(m.group_instance_id for m in after.members) == ["static-a", "static-b"]
        assert sorted(m.group_instance_id for m in generation.members) == ["static-a", "static-b"]
    finally:
        a.close()
        b.close()


def describe_group(bootstrap, group):
    return admin_call(bootstrap, "describe_consumer_groups", [group])[group]


def test_admin_views_of_groups(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=2)
    produce(broker.bootstrap, topic, [b"a", b"b", b"c"], partition=0)
    group = f"g-{topic}"
    c = group_consumer(broker.bootstrap, group)
    try:
        check_admin_views(broker, topic, group, c)
    finally:
        c.close()
    client = admin(broker.bootstrap)
    client.delete_consumer_groups([group], request_timeout=TIMEOUT)[group].result(timeout=TIMEOUT)
    listed = client.list_consumer_groups(request_timeout=TIMEOUT).result(timeout=TIMEOUT)
    assert group not in [g.group_id for g in listed.valid]


def check_admin_views(broker, topic, group, c):
    """The views of a group with one member (`c`), and that it cannot be deleted while it has one."""
    from confluent_kafka import ConsumerGroupTopicPartitions
    c.subscribe([topic])
    wait_assigned([c], range(2), time.monotonic() + 30)
    c.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    client = admin(broker.bootstrap)
    listed = client.list_consumer_groups(request_timeout=TIMEOUT).result(timeout=TIMEOUT)
    ours = [g for g in listed.valid if g.group_id == group]
    assert ours and ours[0].state == ConsumerGroupState.STABLE
    described = client.describe_consumer_groups([group], request_timeout=TIMEOUT)[group].result(timeout=TIMEOUT)
    assert described.state == ConsumerGroupState.STABLE and len(described.members) == 1
    assert sorted(tp.partition for tp in described.members[0].assignment.topic_partitions) == [0, 1]
    offsets = client.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=TIMEOUT)
    assert {(tp.topic, tp.partition): tp.offset for tp in offsets.topic_partitions}[(topic, 0)] == 2
    # A group with members cannot be deleted (the caller deletes it once it is empty).
    with pytest.raises(Exception) as busy:
        client.delete_consumer_groups([group], request_timeout=TIMEOUT)[group].result(timeout=TIMEOUT)
    assert "NON_EMPTY_GROUP" in str(busy.value)


def test_kafka_python_group_consumer(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=3)
    produce(broker.bootstrap, topic, [b"m%d" % i for i in range(90)], partition=None)
    group = f"g-{topic}"
    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=20000)
    try:
        values = []
        for msg in consumer:
            values.append(msg.value)
            if len(values) == 90:
                break
        assert sorted(values) == sorted(b"m%d" % i for i in range(90))
        consumer.commit()
        # Keyless records may all land in one partition: the commits of all three account for the 90.
        committed = [consumer.committed(KpTopicPartition(topic, p)) or 0 for p in range(3)]
        assert sum(committed) == 90, committed
    finally:
        consumer.close()


def test_kcat_balanced_consumer(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=2)
    produce(broker.bootstrap, topic, [b"kc%d" % i for i in range(40)], partition=None)
    result = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-G", f"g-{topic}", "-o", "beginning", "-e", "-q",
         "-X", "session.timeout.ms=6000", topic],
        capture_output=True, timeout=60)
    lines = sorted(result.stdout.decode().split())
    assert lines == sorted("kc%d" % i for i in range(40)), result.stderr.decode()[-2000:]


CRASHING_MEMBER = """
import sys, time
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "session.timeout.ms": %d,
              "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe([sys.argv[3]])
while True:
    c.poll(0.2)
    if c.assignment():
        print("assigned", flush=True)
""" % SESSION_MS


def test_crashed_member_partitions_move_after_session_timeout(broker, topic):
    """A member that dies without leaving (SIGKILL) loses its partitions once its session expires."""
    create_topic(broker.bootstrap, topic, partitions=4)
    group = f"g-{topic}"
    crashing = subprocess.Popen([sys.executable, "-c", CRASHING_MEMBER, broker.bootstrap, group, topic],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    survivor = group_consumer(broker.bootstrap, group)
    try:
        survivor.subscribe([topic])
        # The other member reports its assignment on its stdout; read it without blocking our polls.
        reported = threading.Event()
        threading.Thread(target=lambda: crashing.stdout.readline() and reported.set(), daemon=True).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (reported.is_set() and 0 < len(survivor.assignment()) < 4):
            survivor.poll(0.2)
        assert reported.is_set() and 0 < len(survivor.assignment()) < 4, "the two members never shared the partitions"
        crashing.kill()
        killed = time.monotonic()
        while time.monotonic() < killed + SESSION_MS / 1000 + 15 and len(survivor.assignment()) < 4:
            survivor.poll(0.2)
        assert sorted(tp.partition for tp in survivor.assignment()) == [0, 1, 2, 3]
        # Not before the session could have expired (the broker did not learn of the crash otherwise).
        assert time.monotonic() - killed >= SESSION_MS / 1000 * 0.8
    finally:
        crashing.kill()
        crashing.wait()
        survivor.close()
