"""ACLs on MiniBroker, set and enforced as Kafka's authorizer does, seen by real clients.

A broker with authorizer.class.name and super.users=User:admin: admin grants alice rights with
confluent-kafka's and kafka-python's admin clients, and alice's own clients (librdkafka, kafka-python,
our kfk) find that she produces to a topic she may write and gets TOPIC_AUTHORIZATION_FAILED on one she
may not, does not see that topic in Metadata, cannot join a group she has no READ on, that a DENY beats
an ALLOW, that PREFIXED ACLs match, that an unauthenticated client on the plaintext listener gets
nothing, and that the ACLs are still there after a restart.
"""
import os
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType)

from clients import unique_topic
from sasl_broker import SaslBroker, sasl_conf

AUTHORIZER = {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer", "super.users": "User:admin"}


@pytest.fixture
def acl_broker():
    b = SaslBroker(overrides=AUTHORIZER, name="acls")
    b.start()
    yield b
    b.close()


def admin_of(broker):
    return AdminClient(sasl_conf(broker, "PLAIN", "admin", "admin-secret"))


def alice(broker, **extra):
    return sasl_conf(broker, "PLAIN", "alice", "alice-secret", **extra)


def grant(broker, *bindings):
    admin = admin_of(broker)  # kept referenced until the futures resolve (librdkafka destroys it otherwise)
    for future in admin.create_acls(list(bindings)).values():
        future.result(timeout=20)


def binding(resource, name, operation, permission=AclPermissionType.ALLOW, pattern=ResourcePatternType.LITERAL, principal="User:alice"):
    return AclBinding(resource, name, pattern, principal, "*", operation, permission)


def create_topics(broker, *names):
    admin = admin_of(broker)
    for future in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        future.result(timeout=20)


def produce_errors(conf, topic, n=3):
    producer = Producer({**conf, "message.timeout.ms": 8000})
    outcomes = []
    for i in range(n):
        producer.produce(topic, value=str(i).encode(), on_delivery=lambda e, m: outcomes.append(e))
    producer.flush(15)
    return outcomes


def test_alice_writes_a_not_b_and_does_not_see_b(acl_broker):
    a, b = unique_topic("a"), unique_topic("b")
    create_topics(acl_broker, a, b)
    grant(acl_broker, binding(ResourceType.TOPIC, a, AclOperation.WRITE))
    assert produce_errors(alice(acl_broker), a) == [None, None, None]
    refused = produce_errors(alice(acl_broker), b)
    assert refused and all(e is not None and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in refused), refused
    as_alice = AdminClient(alice(acl_broker))
    listed = as_alice.list_topics(timeout=10).topics
    assert a in listed and b not in listed
    # The super user sees both.
    admin = admin_of(acl_broker)
    assert {a, b} <= set(admin.list_topics(timeout=10).topics)


def test_a_group_without_read_cannot_be_joined(acl_broker):
    topic = unique_topic("grp")
    create_topics(acl_broker, topic)
    grant(acl_broker, binding(ResourceType.TOPIC, topic, AclOperation.READ), binding(ResourceType.GROUP, "allowed-", AclOperation.READ,
                                                                                     pattern=ResourcePatternType.PREFIXED))
    for group, expect_denied in [(f"denied-{topic}", True), (f"allowed-{topic}", False)]:
        errors = []
        consumer = Consumer(alice(acl_broker, **{"group.id": group, "auto.offset.reset": "earliest", "error_cb": errors.append}))
        consumer.subscribe([topic])
        denied = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and denied is None:
            message = consumer.poll(0.5)
            if message is not None and message.error() is not None and message.error().code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
                denied = True
            elif consumer.assignment():
                denied = False
        consumer.close()
        assert denied == expect_denied, (group, errors)


def test_deny_beats_allow_and_prefixed_acls_match(acl_broker):
    eu, us = unique_topic("sales-eu"), unique_topic("sales-us")
    create_topics(acl_broker, eu, us)
    grant(acl_broker, binding(ResourceType.TOPIC, "sales-", AclOperation.ALL, pattern=ResourcePatternType.PREFIXED),
          binding(ResourceType.TOPIC, us, AclOperation.WRITE, AclPermissionType.DENY))
    assert produce_errors(alice(acl_broker), eu) == [None, None, None]
    refused = produce_errors(alice(acl_broker), us)
    assert all(e is not None and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in refused)
    # Describing is not denied: us is still listed.
    as_alice = AdminClient(alice(acl_broker))
    assert us in as_alice.list_topics(timeout=10).topics


def test_acls_are_described_deleted_and_kept_across_a_restart(acl_broker):
    topic = unique_topic("keep")
    grant(acl_broker, binding(ResourceType.TOPIC, topic, AclOperation.READ), binding(ResourceType.TOPIC, topic, AclOperation.WRITE),
          binding(ResourceType.GROUP, "g", AclOperation.READ, principal="User:bob"))
    admin = admin_of(acl_broker)
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY)
    assert len(admin.describe_acls(everything).result(timeout=20)) == 3
    acl_broker.restart()
    admin = admin_of(acl_broker)
    found = admin.describe_acls(everything).result(timeout=20)
    assert sorted((b.name, b.principal, b.operation.name) for b in found) == sorted(
        [(topic, "User:alice", "READ"), (topic, "User:alice", "WRITE"), ("g", "User:bob", "READ")])
    alices = AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:alice", None, AclOperation.ANY, AclPermissionType.ANY)
    deleted = admin.delete_acls([alices])[alices].result(timeout=20)
    assert len(deleted) == 2
    assert [b.principal for b in admin.describe_acls(everything).result(timeout=20)] == ["User:bob"]


def test_only_the_right_principals_manage_acls_and_anonymous_gets_nothing(acl_broker):
    topic = unique_topic("anon")
    create_topics(acl_broker, topic)
    grant(acl_broker, binding(ResourceType.TOPIC, topic, AclOperation.READ, principal="User:bob"))
    as_alice = AdminClient(alice(acl_broker))
    with pytest.raises(KafkaException) as caught:
        as_alice.create_acls([binding(ResourceType.TOPIC, topic, AclOperation.ALL)])[
            binding(ResourceType.TOPIC, topic, AclOperation.ALL)].result(timeout=20)
    assert caught.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    # DescribeAcls answers CLUSTER_AUTHORIZATION_FAILED too, but librdkafka drops that answer's top-level
    # error and reports an empty list: alice learns nothing either way.
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY)
    assert as_alice.describe_acls(everything).result(timeout=20) == []
    # The plaintext listener's clients are User:ANONYMOUS: no ACL names them.
    anonymous = {"bootstrap.servers": acl_broker.bootstrap}
    as_anonymous = AdminClient(anonymous)
    assert topic not in as_anonymous.list_topics(timeout=10).topics
    refused = produce_errors(anonymous, topic, n=1)
    assert refused[0] is not None and refused[0].code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED)


def test_kafka_python_admin_and_clients(acl_broker):
    from kafka import KafkaProducer
    from kafka.admin import ACL, ACLFilter, ACLOperation, ACLPermissionType, KafkaAdminClient, ResourcePattern
    from kafka.admin import ResourcePatternFilter, ResourceType as KResourceType, ACLResourcePatternType
    from kafka.errors import TopicAuthorizationFailedError
    a, b = unique_topic("kp-a"), unique_topic("kp-b")
    create_topics(acl_broker, a, b)
    common = dict(bootstrap_servers=acl_broker.sasl_bootstrap, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN")
    admin = KafkaAdminClient(sasl_plain_username="admin", sasl_plain_password="admin-secret", **common)
    result = admin.create_acls([ACL("User:alice", "*", ACLOperation.WRITE, ACLPermissionType.ALLOW,
                                    ResourcePattern(KResourceType.TOPIC, a, ACLResourcePatternType.LITERAL))])
    assert not result["failed"], result
    acls, error = admin.describe_acls(ACLFilter("User:alice", None, ACLOperation.ANY, ACLPermissionType.ANY,
                                                ResourcePatternFilter(KResourceType.TOPIC, a, ACLResourcePatternType.ANY)))
    assert [(x.principal, x.operation) for x in acls] == [("User:alice", ACLOperation.WRITE)]
    admin.close()
    from kafka.errors import ClusterAuthorizationFailedError
    as_alice = KafkaAdminClient(sasl_plain_username="alice", sasl_plain_password="alice-secret", **common)
    with pytest.raises(ClusterAuthorizationFailedError):
        as_alice.describe_acls(ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                         ResourcePatternFilter(KResourceType.ANY, None, ACLResourcePatternType.ANY)))
    as_alice.close()
    producer = KafkaProducer(sasl_plain_username="alice", sasl_plain_password="alice-secret", retries=0, **common)
    producer.send(a, b"ok").get(timeout=20)
    with pytest.raises(TopicAuthorizationFailedError):
        producer.send(b, b"no").get(timeout=20)
    producer.close()


def test_kfk_as_a_principal(acl_broker):
    a, b = unique_topic("kfk-a"), unique_topic("kfk-b")
    create_topics(acl_broker, a, b)
    grant(acl_broker, binding(ResourceType.TOPIC, a, AclOperation.ALL))
    env = {**os.environ, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN",
           "KAFKA_SASL_USERNAME": "alice", "KAFKA_SASL_PASSWORD": "alice-secret"}

    def kfk(*args, stdin=None):
        return subprocess.run([os.environ["KFK"], *args, "--bootstrap-server", acl_broker.sasl_bootstrap], input=stdin,
                              capture_output=True, timeout=60, env=env)

    listed = kfk("topics", "list")
    assert listed.returncode == 0, listed.stderr
    assert a in listed.stdout.decode() and b not in listed.stdout.decode()
    assert kfk("produce", a, stdin=b"x\n").returncode == 0
    refused = kfk("produce", b, stdin=b"x\n")
    assert refused.returncode != 0 and b"TOPIC_AUTHORIZATION_FAILED" in refused.stderr


def test_admin_clients_are_told_what_the_principal_may_do(acl_broker):
    """KIP-430 through librdkafka: describe_topics, describe_cluster and describe_consumer_groups with
    include_authorized_operations list alice's operations (an ALLOW's implied ones included)."""
    from confluent_kafka import TopicCollection
    topic = unique_topic("kip430")
    group = f"g-{topic}"
    create_topics(acl_broker, topic)
    grant(acl_broker, binding(ResourceType.TOPIC, topic, AclOperation.READ), binding(ResourceType.TOPIC, topic, AclOperation.ALTER_CONFIGS),
          binding(ResourceType.GROUP, group, AclOperation.READ), binding(ResourceType.BROKER, "kafka-cluster", AclOperation.DESCRIBE))
    consumer = Consumer(alice(acl_broker, **{"group.id": group, "auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    deadline = time.monotonic() + 20
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(0.2)
    assert consumer.assignment()
    admin = AdminClient(alice(acl_broker))
    described = admin.describe_topics(TopicCollection([topic]), include_authorized_operations=True)[topic].result(timeout=20)
    assert set(described.authorized_operations) == {AclOperation.READ, AclOperation.DESCRIBE, AclOperation.ALTER_CONFIGS,
                                                    AclOperation.DESCRIBE_CONFIGS}
    cluster = admin.describe_cluster(include_authorized_operations=True).result(timeout=20)
    assert set(cluster.authorized_operations) == {AclOperation.DESCRIBE}
    groups = admin.describe_consumer_groups([group], include_authorized_operations=True)[group].result(timeout=20)
    assert set(groups.authorized_operations) == {AclOperation.READ, AclOperation.DESCRIBE}
    # Not asked for: not told.
    plain = admin.describe_topics(TopicCollection([topic]))[topic].result(timeout=20)
    assert not plain.authorized_operations
    consumer.close()
