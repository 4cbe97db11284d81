"""The original system's HTTP faces as a user drives them, against MiniBroker and against Tansu:
`user-events serve` answers 202 and the submission reaches `done`; its /report is what user-stats stored;
`assistance serve` publishes a request read back by confluent-kafka, refuses a missing topic without
creating it, and refuses bad input with JSON problems; every process stops cleanly on SIGTERM and SIGINT
(release binaries: the build users run)."""

import json
import re
import signal
import subprocess
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from broker import free_port
from services import (Process, assert_problem, assistance, binary, poll_submission, request, user_events_api,
                      user_stats)
from test_producer import create_topic, read_kafka_python


def wait_report(api, total, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, body = request("GET", api.url + "/report")
        if status == 200 and body["totalUsers"] >= total:
            return body
        time.sleep(0.2)
    pytest.fail(f"the report did not reach {total} users: {body}")


def topic_names(bootstrap):
    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


def test_submit_202_then_done_and_the_report_is_what_user_stats_stored(any_broker, tmp_path):
    broker = any_broker
    topic = f"users-{uuid.uuid4().hex[:6]}"
    create_topic(broker.bootstrap, topic, 3)
    db = tmp_path / "stats.sqlite"
    stats = user_stats(broker, topic, db, tmp_path)
    api = user_events_api(broker.bootstrap, topic, stats.url, tmp_path)
    try:
        empty = request("GET", api.url + "/report")
        assert empty[0] == 200 and empty[2] == {"totalUsers": 0, "skippedEvents": 0, "cities": []}, empty

        status, headers, body = request("POST", api.url + "/submit/10")
        assert status == 202, body
        assert body["state"] == "running" and body["requested"] == 10
        assert headers["Location"] == f"/submissions/{body['id']}"
        done = poll_submission(api, headers["Location"])
        assert (done["state"], done["delivered"], done["failed"]) == ("done", 10, 0), done
        assert "reason" not in done and done["finishedAt"] >= done["createdAt"]

        report = wait_report(api, 10)
        assert report["totalUsers"] == 10 and report["skippedEvents"] == 0
        # What user-stats stored (its own CLI reads the database) and what the events say.
        stored = json.loads(subprocess.run([binary("USER_STATS"), "report", "--db", str(db)], capture_output=True, text=True,
                                           check=True, timeout=30).stdout)
        assert report == stored
        counted = Counter(json.loads(value)["address"]["city"] for _, _, value in read_kafka_python(broker.bootstrap, topic, 10))
        assert {c["city"]: c["users"] for c in report["cities"]} == dict(counted)
        stats.wait_for_log("New report generated (10 users")
    finally:
        api.stop()
        stats.stop()
    assert "user-events API stopped" in api.log() and "user-stats stopped with 10 users stored" in stats.log()


def test_bad_input_gets_4xx_problems_and_user_stats_down_a_502(broker, tmp_path):
    api = user_events_api(broker.bootstrap, "users-bad", f"http://127.0.0.1:{free_port()}", tmp_path)
    try:
        for path in ["/submit/0", "/submit/-1", "/submit/100001", "/submit/ten", "/submit/2.5"]:
            assert_problem(request("POST", api.url + path), 400)
        assert_problem(request("GET", api.url + "/submissions/no-such-id"), 404)
        assert_problem(request("GET", api.url + "/nowhere"), 404)
        assert "user-stats at" in assert_problem(request("GET", api.url + "/report"), 502)["detail"]
        status, headers, page = request("GET", api.url + "/docs")
        assert status == 200 and headers["Content-Type"].startswith("text/html") and "/submit/{n}" in page
        status, _, document = request("GET", api.url + "/openapi.yaml")
        assert status == 200 and document == open("Services/OpenAPI/user-events-api.yaml").read()
    finally:
        api.stop()


def test_broker_down_the_submission_fails_with_a_reason_and_the_api_stays_up(tmp_path):
    dead = f"127.0.0.1:{free_port()}"
    api = user_events_api(dead, "users", f"http://127.0.0.1:{free_port()}", tmp_path, "--delivery-timeout-ms", "2000")
    try:
        status, headers, _ = request("POST", api.url + "/submit/5")
        assert status == 202
        failed = poll_submission(api, headers["Location"])
        assert (failed["state"], failed["delivered"], failed["failed"]) == ("failed", 0, 5), failed
        assert dead in failed["reason"], failed["reason"]
        assert request("GET", api.url + "/health")[0] == 200
    finally:
        api.stop()


def test_sigterm_stops_a_running_submission_and_delivers_what_it_queued(broker, tmp_path):
    """Graceful shutdown: the server stops, the running submission queues no more users (they count as
    failed, with the reason), and every user it queued is delivered before the process exits."""
    topic = f"users-{uuid.uuid4().hex[:6]}"
    create_topic(broker.bootstrap, topic, 1)
    api = user_events_api(broker.bootstrap, topic, f"http://127.0.0.1:{free_port()}", tmp_path)
    status, _, submission = request("POST", api.url + "/submit/100000")
    assert status == 202
    time.sleep(0.3)
    api.stop(signal.SIGTERM)
    ended = re.search(rf"submission {submission['id']} (done|failed): (\d+) delivered, (\d+) failed", api.log())
    assert ended, api.log()[-3000:]
    state, delivered, failed = ended.group(1), int(ended.group(2)), int(ended.group(3))
    assert delivered + failed == 100000 and delivered > 0
    if state == "failed":
        assert f"failed: {delivered} delivered, {failed} failed (the service stopped before {failed} of the users were queued)" \
            in api.log(), api.log()[-2000:]
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"g-{topic}"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        consumer.close()
    assert high - low == delivered


def test_assistance_request_is_published_and_read_back(any_broker, tmp_path):
    broker = any_broker
    topic = f"sales-{uuid.uuid4().hex[:6]}"
    create_topic(broker.bootstrap, topic, 2)
    service = assistance(broker.bootstrap, tmp_path)
    listener = Process([binary("ASSISTANCE"), "listen", "--topic", topic, "--bootstrap-server", broker.bootstrap],
                       tmp_path / "listener.log")
    try:
        status, _, event = request("POST", service.url + "/assistance", {"topic": topic, "description": "The printer is on fire"})
        assert status == 201, event
        assert event["topic"] == topic and event["description"] == "The printer is on fire"
        uuid.UUID(event["id"])
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"check-{topic}", "auto.offset.reset": "earliest",
                             "enable.auto.commit": False})
        consumer.subscribe([topic])
        try:
            message = None
            deadline = time.monotonic() + 30
            while message is None and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is not None and message.error():
                    message = None
        finally:
            consumer.close()
        assert message is not None, "confluent-kafka read nothing"
        assert message.key().decode() == event["id"]
        assert (message.partition(), message.offset()) == (event["partition"], event["offset"])
        value = json.loads(message.value())
        assert set(value) == {"id", "topic", "description", "requestedAt"}
        assert (value["id"], value["topic"], value["description"]) == (event["id"], topic, "The printer is on fire")
        assert value["requestedAt"] == event["requestedAt"]
        listener.wait_for_log(f"assistance request {event['id']}")
        assert "The printer is on fire" in listener.log()
    finally:
        listener.stop(signal.SIGINT)
        service.stop()


def test_assistance_refuses_a_missing_topic_without_creating_it_and_bad_input(any_broker, tmp_path):
    broker = any_broker
    missing = f"nobody-{uuid.uuid4().hex[:6]}"
    service = assistance(broker.bootstrap, tmp_path)
    try:
        problem = assert_problem(request("POST", service.url + "/assistance", {"topic": missing, "description": "help"}), 404)
        assert missing in problem["detail"]
        time.sleep(0.5)
        assert missing not in topic_names(broker.bootstrap)
        for body in ["{", '{"topic": "sales"}', '{"topic": 5, "description": "help"}', '{"topic": "sales", "description": 5}',
                     json.dumps({"topic": "sales", "description": "x" * 2001}), json.dumps({"topic": "bad topic!", "description": "x"}),
                     json.dumps({"topic": "__consumer_offsets", "description": "x"})]:
            assert_problem(request("POST", service.url + "/assistance", body), 400)
        assert_problem(request("POST", service.url + "/assistance", json.dumps({"topic": "a", "description": "x" * 100_000})), 413)
        assert request("GET", service.url + "/health")[0] == 200
    finally:
        service.stop()


def group_members(bootstrap, group):
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until its answer is read
    return admin.describe_consumer_groups([group])[group].result(timeout=10).members


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_every_service_stops_cleanly_on_a_signal(broker, tmp_path, sig):
    """The release binaries too: their signal handling lives as long as the process (ServiceLifecycle).
    The consumers leave their groups before the process exits."""
    topic = f"users-{uuid.uuid4().hex[:6]}"
    create_topic(broker.bootstrap, topic, 1)
    processes = []
    try:
        stats = user_stats(broker, topic, tmp_path / "stats.sqlite", tmp_path, group=f"stats-{topic}")
        processes.append(stats)
        api = user_events_api(broker.bootstrap, topic, stats.url, tmp_path)
        processes.append(api)
        service = assistance(broker.bootstrap, tmp_path)
        processes.append(service)
        listener = Process([binary("ASSISTANCE"), "listen", "--topic", topic, "--bootstrap-server", broker.bootstrap],
                           tmp_path / "listener.log")
        processes.append(listener)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (group_members(broker.bootstrap, f"stats-{topic}")
                                                   and group_members(broker.bootstrap, f"assistance-{topic}")):
            time.sleep(0.2)
        assert group_members(broker.bootstrap, f"stats-{topic}") and group_members(broker.bootstrap, f"assistance-{topic}")
        for process in [api, service, listener, stats]:
            started = time.monotonic()
            process.stop(sig, timeout=20)
            assert time.monotonic() - started < 15
        # LeaveGroup went out before each consumer's process ended: no member waits out its session.
        assert group_members(broker.bootstrap, f"stats-{topic}") == []
        assert group_members(broker.bootstrap, f"assistance-{topic}") == []
    finally:
        for process in processes:
            process.kill()
