"""The admin APIs tools call beyond topics and groups (issue 24), through kafka-python's and
confluent-kafka's admin clients: log dirs, paged topic descriptions, leader elections, partition
reassignments, the KRaft quorum, producer state, config resources, and the ACL and SCRAM calls of a
broker without an authorizer. Each answer's content is checked, and the connection stays usable
(before, an unserved API closed it and the tool failed as a whole)."""

import pytest
from confluent_kafka import ElectionType, KafkaError, TopicPartition as CTopicPartition
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, ResourcePatternType,
                                   ResourceType)
from kafka import KafkaAdminClient
from kafka import errors as kerrors
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, NewTopic, ResourcePattern,
                         ResourcePatternFilter)
from kafka.admin import ResourceType as KResourceType
from kafka.structs import TopicPartition

from clients import TIMEOUT, produce, unique_topic, wait_for_topic


@pytest.fixture
def admin(broker):
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=int(TIMEOUT * 1000))
    yield client
    client.close()


@pytest.fixture
def topics(broker, admin):
    names = (unique_topic("orders"), unique_topic("audit"))
    admin.create_topics([NewTopic(names[0], 3, 1), NewTopic(names[1], 2, 1)])
    for name in names:
        wait_for_topic(broker.bootstrap, name)
    return names


def test_describe_log_dirs_gives_the_directory_its_space_and_partition_sizes(broker, admin, topics):
    orders, audit = topics
    produce(broker.bootstrap, orders, [b"x" * 1000] * 20, partition=1)
    [entry] = admin.describe_log_dirs()
    assert entry["broker"] == 0
    [log_dir] = entry["log_dirs"]
    assert log_dir["error_code"] == 0 and log_dir["log_dir"] == broker.data_dir
    assert 0 < log_dir["usable_bytes"] <= log_dir["total_bytes"]
    by_topic = {t["name"]: {p["partition_index"]: p for p in t["partitions"]} for t in log_dir["topics"]}
    assert sorted(by_topic[orders]) == [0, 1, 2] and sorted(by_topic[audit]) == [0, 1]
    assert by_topic[orders][1]["partition_size"] > 20_000 and by_topic[orders][0]["partition_size"] == 0
    assert all(p["offset_lag"] == 0 and not p["is_future_key"] for p in by_topic[orders].values())
    [some] = admin.describe_log_dirs(topic_partitions={orders: [1], "no-such-topic": [0]})
    assert [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in some["log_dirs"][0]["topics"]] == [(orders, [1])]


def test_describe_topic_partitions_pages_with_its_cursor(admin, topics):
    orders, audit = topics
    counts = {orders: 3, audit: 2}
    # Topics in name order, then partitions in order, 3 to a page.
    everything = [(name, p) for name in sorted(counts) for p in range(counts[name])]
    first = admin.describe_topic_partitions([orders, audit], response_partition_limit=3)
    page = [(t["name"], p["partition_index"]) for t in first["topics"] for p in t["partitions"]]
    assert page == everything[:3]
    assert all(t["error_code"] == 0 and t["topic_authorized_operations"] == 3576 and not t["is_internal"] for t in first["topics"])
    cursor = first["next_cursor"]
    assert cursor is not None
    rest = admin.describe_topic_partitions([orders, audit], response_partition_limit=3, cursor=cursor)
    assert [(t["name"], p["partition_index"]) for t in rest["topics"] for p in t["partitions"]] == everything[3:]
    assert rest["next_cursor"] is None


def test_elections_are_not_needed_and_reassignment_is_only_to_this_node(broker, admin, topics):
    orders, _ = topics
    answer = admin.elect_leaders(0, {orders: [0, 1]})
    codes = [p.error_code for r in answer.replica_election_results for p in r.partition_result]
    assert codes == [84, 84]
    with pytest.raises(kerrors.UnknownTopicOrPartitionError):
        admin.elect_leaders(0, {"no-such-topic": [0]})
    assert admin.list_partition_reassignments() == {}
    result = admin.alter_partition_reassignments({TopicPartition(orders, 0): [0], TopicPartition(orders, 1): [0, 5]})
    assert result[TopicPartition(orders, 0)] is None
    assert result[TopicPartition(orders, 1)] is kerrors.InvalidReplicationAssignmentError

    confluent = AdminClient({"bootstrap.servers": broker.bootstrap})
    elected = confluent.elect_leaders(ElectionType.PREFERRED, [CTopicPartition(orders, 2), CTopicPartition("no-such-topic", 0)]).result(TIMEOUT)
    assert sorted(e.code() for e in elected.values()) == sorted([KafkaError.ELECTION_NOT_NEEDED, KafkaError.UNKNOWN_TOPIC_OR_PART])


def test_describe_metadata_quorum_names_this_node(broker, admin):
    quorum = admin.describe_metadata_quorum()
    [partition] = quorum["topics"][0]["partitions"]
    assert quorum["topics"][0]["topic_name"] == "__cluster_metadata"
    assert partition["leader_id"] == 0 and partition["leader_epoch"] >= 1 and partition["error"] is None
    assert [v["replica_id"] for v in partition["current_voters"]] == [0] and partition["observers"] == []
    assert quorum["nodes"] == [{"node_id": 0, "listeners": [{"name": "PLAINTEXT", "host": "127.0.0.1", "port": broker.port}]}]


def test_describe_producers_shows_an_idempotent_producer(broker, admin, topics):
    orders, _ = topics
    produce(broker.bootstrap, orders, [b"a", b"b", b"c"], partition=2, config={"enable.idempotence": True})
    states = admin.describe_producers([TopicPartition(orders, 2), TopicPartition(orders, 0)])
    [producer] = states[TopicPartition(orders, 2)].active_producers
    assert producer.producer_id >= 0 and producer.producer_epoch >= 0 and producer.last_sequence == 2
    assert producer.current_transaction_start_offset == -1 and producer.last_timestamp > 0
    assert states[TopicPartition(orders, 0)].active_producers == []


def test_config_resources_list_the_broker_and_every_topic(admin, topics):
    listed = admin.list_config_resources()
    assert listed["broker"] == ["0"]
    assert set(topics) <= set(listed["topic"]) and "__consumer_offsets" in listed["topic"]


def test_acl_and_scram_calls_get_security_disabled_and_the_connection_stays(broker, admin, topics):
    orders, _ = topics
    with pytest.raises(kerrors.SecurityDisabledError):
        admin.describe_acls(ACLFilter(principal=None, host="*", operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
                                      resource_pattern=ResourcePatternFilter(KResourceType.TOPIC, None, ACLResourcePatternType.ANY)))
    created = admin.create_acls([ACL("User:alice", "*", ACLOperation.READ, ACLPermissionType.ALLOW,
                                     ResourcePattern(KResourceType.TOPIC, orders))])
    assert created == {"succeeded": [], "failed": [kerrors.SecurityDisabledError]}
    assert admin.describe_user_scram_credentials() == {}
    assert "does not exist" in admin.describe_user_scram_credentials(["alice"])["alice"]["error"]
    # The same client goes on working.
    assert orders in admin.list_topics()

    confluent = AdminClient({"bootstrap.servers": broker.bootstrap})
    binding = AclBinding(ResourceType.TOPIC, orders, ResourcePatternType.LITERAL, "User:alice", "*", AclOperation.READ,
                         AclPermissionType.ALLOW)
    failures = {k: f.exception(TIMEOUT) for k, f in confluent.create_acls([binding]).items()}
    assert [e.args[0].code() for e in failures.values()] == [KafkaError.SECURITY_DISABLED]
    scram = {k: f.exception(TIMEOUT) for k, f in confluent.describe_user_scram_credentials(["alice"]).items()}
    assert scram["alice"].args[0].code() == KafkaError.RESOURCE_NOT_FOUND


def test_feature_levels_are_described_and_group_version_updated(broker_factory):
    """kafka-python's describe_features (ApiVersions v3+) and update_features (UpdateFeatures); a new
    broker of the test's own, since group.version 0 turns the KIP-848 protocol off for everyone (what a
    KIP-848 heartbeat is then answered is FeatureLevelTests')."""
    from kafka.admin._cluster import UpdateFeatureType
    fresh = broker_factory()
    client = KafkaAdminClient(bootstrap_servers=fresh.bootstrap, request_timeout_ms=int(TIMEOUT * 1000))
    try:
        features = client.describe_features()
        assert features["metadata.version"] == {"supported": (7, 25), "finalized": (25, 25), "finalized_epoch": 0}
        assert features["group.version"]["finalized"] == (1, 1)
        assert client.update_features({"group.version": (UpdateFeatureType.SAFE_DOWNGRADE, 0)}) == {"group.version": "OK"}
        lowered = client.describe_features()
        assert "finalized" not in lowered.get("group.version", {}) and lowered["metadata.version"]["finalized_epoch"] == 1
        with pytest.raises(kerrors.InvalidUpdateVersionError):
            client.update_features({"group.version": 2})
        with pytest.raises(kerrors.InvalidUpdateVersionError):
            client.update_features({"metadata.version": (UpdateFeatureType.SAFE_DOWNGRADE, 21)})
    finally:
        client.close()
    fresh.restart()
    client = KafkaAdminClient(bootstrap_servers=fresh.bootstrap, request_timeout_ms=int(TIMEOUT * 1000))
    try:
        assert "finalized" not in client.describe_features().get("group.version", {})
        client.update_features({"group.version": 1})
        assert client.describe_features()["group.version"]["finalized"] == (1, 1)
    finally:
        client.close()
